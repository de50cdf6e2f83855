"""The named facts a framework rule can need (coverage.toml ``needs``, ``unless``, ``when``): each is computed from
the result alone, and says what it found ("" when the evidence is absent). This is the only list of them; a name in
coverage.toml that is not here is an error (tests/audit/frameworks_rules).

A fact reads a finding's details by field name, whether they are typed (the run) or plain dicts (a results.json read
without types; audit/frameworks/fields.py). No check id is written here: a fact that concerns one check gets it from
the rule (``check``). The facts about attacks are in audit/frameworks/facts_attacks.py."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from audit.core.result import AuditResult, Finding, Verdict
from audit.frameworks import facts_attacks as attacks
from audit.frameworks.fields import USABLE, defence_names, defence_origin, number, usable

__all__ = ["FACTS", "USABLE", "Fact", "holds", "usable"]
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Fact:
    """``fn(result, finding, check)`` -> what shows the fact, "" when it does not hold. ``per_finding``: it is about
    one finding (a check's declared control), so a rule of a check's control may need it."""

    text: str
    fn: Callable[[AuditResult, Finding | None, str], str]
    per_finding: bool = False


def _hashed(value: str) -> bool:
    return bool(_SHA256.fullmatch(value or ""))


def _finding_usable(result: AuditResult, f: Finding | None, check: str) -> str:
    return f"{f.id} ran and was judged ({f.status.value})" if f is not None and usable(f) else ""


def _check_usable(result: AuditResult, f: Finding | None, check: str) -> str:
    ran = [g.id for g in result.findings if g.check == check and usable(g)]
    return f"{', '.join(ran)} ran and {'was' if len(ran) == 1 else 'were'} judged" if ran else ""


def _defence_variant(result: AuditResult, f: Finding | None, check: str) -> str:
    if f is None or not f.variant or f.variant not in defence_names(result):
        return ""
    return f"variant '{f.variant}' is a defence ([[defences]]) {defence_origin(result, f.variant)}"


def _rows_removed(result: AuditResult, f: Finding | None, check: str) -> str:
    """The cleaned retraining removed rows: with none removed, the retrained model is the baseline again."""
    n = int(number(f.details, "removed_rows")) if f is not None else 0
    return f"the retrained model left out {n} flagged training rows" if n > 0 else ""


def _policy_hashed(result: AuditResult, f: Finding | None, check: str) -> str:
    p = result.policy
    if not _hashed(p.sha256) or not p.thresholds:
        return ""
    return (f"policy '{p.name}' v{p.version}: {len(p.thresholds)} thresholds, SHA-256 {p.sha256[:12]}... in the "
            f"results")


def _inputs_hashed(result: AuditResult, f: Finding | None, check: str) -> str:
    h = result.dataset.sha256
    if not (_hashed(h.train) and _hashed(h.test) and _hashed(result.policy.sha256)):
        return ""
    return f"train split {h.train[:12]}..., test split {h.test[:12]}..., policy {result.policy.sha256[:12]}..."


def _supplied_weights_hashed(result: AuditResult, f: Finding | None, check: str) -> str:
    sha = result.model.file_sha256
    return f"the supplied weights file {result.model.source}: SHA-256 {sha[:12]}..." if _hashed(sha) else ""


def _run_recorded(result: AuditResult, f: Finding | None, check: str) -> str:
    d, settings = result.dataset, result.config.get("attacks") or {}
    if not (_hashed(d.sha256.test) and d.n_test > 0 and settings.get("attacks") and result.environment
            and "seed" in result.config):
        return ""
    ran = attacks.attacks_that_ran(result)
    preset = settings.get("preset") or "custom"
    what = f"attacks {', '.join(ran)} ran ({preset})" if ran else \
        f"attacks configured: {', '.join(settings['attacks'])} ({preset}), none ran"
    return (f"{d.n_train} train / {d.n_test} test points (hashed), seed {result.config['seed']}, {what}, "
            f"{len(result.environment)} tool and device versions")


def _verdict_decided(result: AuditResult, f: Finding | None, check: str) -> str:
    gating = [g for g in result.findings if g.gating and usable(g)]
    if result.verdict is Verdict.ERROR or not gating:
        return ""
    return f"verdict {result.verdict.value} from {len(gating)} gating findings against the policy's thresholds"


def _not_measured_listed(result: AuditResult, f: Finding | None, check: str) -> str:
    n = len(result.not_measured)
    return f"{n} threat classes listed as not measured, with why" if n else ""


def _residual_risk_stated(result: AuditResult, f: Finding | None, check: str) -> str:
    n = len(result.residual_risk)
    return f"{n} residual-risk statements computed from the findings" if n else ""


def _findings_reported(result: AuditResult, f: Finding | None, check: str) -> str:
    n = sum(1 for g in result.findings if usable(g))
    return f"{n} findings with their metrics, thresholds and test settings" if n else ""


FACTS: dict[str, Fact] = {
    "finding_usable": Fact("the check ran and its finding was judged (not skipped, not crashed)", _finding_usable,
                           per_finding=True),
    "defence_variant": Fact("the finding is about a defended variant ([[defences]])", _defence_variant,
                            per_finding=True),
    "check_usable": Fact("the rule's check ran and was judged", _check_usable),
    "policy_hashed": Fact("a policy with thresholds, hashed before the run", _policy_hashed),
    "inputs_hashed": Fact("the data splits and the policy are identified by SHA-256", _inputs_hashed),
    "supplied_weights_hashed": Fact("the user supplied a weights file, hashed", _supplied_weights_hashed),
    "run_recorded": Fact("data sizes and hashes, seed, attack settings and tool versions recorded", _run_recorded),
    "verdict_decided": Fact("a verdict computed from usable gating findings", _verdict_decided),
    "not_measured_listed": Fact("the threats this run does not measure are listed", _not_measured_listed),
    "residual_risk_stated": Fact("residual risk is stated from the findings", _residual_risk_stated),
    "findings_reported": Fact("at least one finding ran and was judged", _findings_reported),
    "rows_removed": Fact("the cleaned retraining removed at least one training row", _rows_removed, per_finding=True),
    "defences_compared": Fact("a defended variant (trained here or loaded from weights, as it says) and another "
                              "variant, both judged, attacked with the same attacks and eps",
                              attacks.defences_compared),
    "gradient_attack_ran": Fact("a white-box (gradient) attack attacked points in a judged robustness grid",
                                attacks.gradient_attack_ran),
    "query_attack_ran": Fact("a score-based (black-box, query) attack made queries on at least one point",
                             attacks.query_attack_ran),
    "validity_checks_ran": Fact("the attack validity checks ran and were judged", attacks.validity_checks_ran),
}


def holds(name: str, result: AuditResult, finding: Finding | None = None, check: str = "") -> str:
    """What shows fact ``name`` on this result ("" when it does not hold); an unknown name is a KeyError."""
    return FACTS[name].fn(result, finding, check)

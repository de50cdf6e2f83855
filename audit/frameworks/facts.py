"""The named facts a framework rule can need (coverage.toml ``needs``, ``unless``, ``when``): each is computed from
the result alone, and says what it found ("" when the evidence is absent). This is the only list of them; a name in
coverage.toml that is not here is an error (tests/audit/frameworks_rules).

A fact reads a finding's details by field name, whether they are typed (the run) or plain dicts (a results.json read
without types). No check id is written here: a fact that concerns one check gets it from the rule (``check``)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit.core.result import AuditResult, Finding, Status, Verdict

USABLE = frozenset({Status.PASS, Status.WARN, Status.FAIL, Status.INFO})  # a crashed or skipped check is no evidence
_SHA256 = re.compile(r"[0-9a-f]{64}")
WORST_CASE = "worst_case"   # audit.core.metrics.WORST_CASE: the per-example minimum, not an attack of its own


@dataclass(frozen=True)
class Fact:
    """``fn(result, finding, check)`` -> what shows the fact, "" when it does not hold. ``per_finding``: it is about
    one finding (a check's declared control), so a rule of a check's control may need it."""

    text: str
    fn: Callable[[AuditResult, Finding | None, str], str]
    per_finding: bool = False


def get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of typed details or of their JSON form."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def items(obj: Any, key: str) -> tuple:
    """A field that is a list of records (``rows``, ``validity_checks``), or () when it is anything else: details of
    different checks reuse field names for other things (``rows`` is a count in some)."""
    value = get(obj, key)
    return tuple(value) if isinstance(value, (list, tuple)) else ()


def mapping(obj: Any, key: str) -> dict:
    value = get(obj, key)
    return value if isinstance(value, dict) else {}


def usable(f: Finding) -> bool:
    return f.status in USABLE


def _hashed(value: str) -> bool:
    return bool(_SHA256.fullmatch(value or ""))


def defence_names(result: AuditResult) -> set[str]:
    return {str(get(d, "name", "")) for d in result.config.get("defences") or ()}


def _finding_usable(result: AuditResult, f: Finding | None, check: str) -> str:
    return f"{f.id} ran and was judged ({f.status.value})" if f is not None and usable(f) else ""


def _check_usable(result: AuditResult, f: Finding | None, check: str) -> str:
    ran = [g.id for g in result.findings if g.check == check and usable(g)]
    return f"{', '.join(ran)} ran and {'was' if len(ran) == 1 else 'were'} judged" if ran else ""


def _defence_variant(result: AuditResult, f: Finding | None, check: str) -> str:
    if f is None or not f.variant or f.variant not in defence_names(result):
        return ""
    supplied = any(get(d, "name") == f.variant and get(d, "weights") for d in result.config.get("defences") or ())
    how = "loaded from weights" if supplied else "trained by this run"
    return f"variant '{f.variant}' is a defence ([[defences]]) {how}"


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
    d, attacks = result.dataset, result.config.get("attacks") or {}
    if not (_hashed(d.sha256.test) and d.n_test > 0 and attacks.get("attacks") and result.environment
            and "seed" in result.config):
        return ""
    return (f"{d.n_train} train / {d.n_test} test points (hashed), seed {result.config['seed']}, attacks "
            f"{', '.join(attacks['attacks'])} ({attacks.get('preset') or 'custom'}), {len(result.environment)} "
            f"tool and device versions")


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


def _attack_set(v) -> frozenset:
    return frozenset((p.attack, round(p.eps, 9)) for p in v.robustness if p.attack != WORST_CASE)


def _defences_compared(result: AuditResult, f: Finding | None, check: str) -> str:
    """A defended variant trained by this run and another variant, both attacked with the same attacks and eps."""
    names = defence_names(result)
    attacked = [v for v in result.variants if _attack_set(v)]
    for d in (v for v in attacked if v.name in names):
        same = [o.name for o in attacked if o.name != d.name and _attack_set(o) == _attack_set(d)]
        if same:
            attacks = sorted({a for a, _ in _attack_set(d)})
            return (f"defended '{d.name}' compared with {', '.join(repr(s) for s in same)} on the same attacks "
                    f"({', '.join(attacks)}) at {len({e for _, e in _attack_set(d)})} eps")
    return ""


def score_based_attacks() -> dict[str, str]:
    """name -> label of every attack that reads scores only (no gradients): the black-box, query-based ones."""
    from attacks import ATTACKS  # here, not at import: reading a result stays free of torch
    return {name: spec.label for name, spec in ATTACKS.items() if spec.score_based}


def _grid_queries(result: AuditResult, names: dict[str, str]) -> list[str]:
    out = []
    for v in result.variants:
        ran = sorted({names[p.attack] for p in v.robustness if p.attack in names})
        if ran:
            out.append(f"{', '.join(ran)} in the robustness grid of '{v.name}'")
    return out


def _probe_queries(f: Finding) -> str:
    """The validity probe C6 (a black-box attack on the points the white-box attacks left robust), when it ran."""
    for c in items(f.details, "validity_checks"):
        if get(c, "id") == "C6" and get(c, "status") in ("pass", "warn", "fail"):
            values = mapping(c, "values")
            return (f"native Square ({get(values, 'queries', '?')} queries) on {get(values, 'attacked', '?')} "
                    f"white-box-robust points in {f.id} (C6)")
    return ""


def _art_queries(f: Finding, names: dict[str, str]) -> str:
    """ART's implementation of a score-based attack run beside ours (a cross-check's ``attacks`` with an ``art``)."""
    crossed = [names[a] for a, row in mapping(f.details, "attacks").items()
               if a in names and isinstance(get(row, "art"), (int, float))]
    return f"ART's {', '.join(crossed)} beside ours in {f.id}" if crossed else ""


def _deployment_queries(f: Finding, names: dict[str, str]) -> str:
    labels = tuple(names.values())
    rows = [r for r in items(f.details, "rows")
            if any(str(k).startswith(labels) for k in mapping(r, "robust_by_attack"))]
    return f"Square against {len(rows)} deployment(s) in {f.id}" if rows else ""


def _query_attack_ran(result: AuditResult, f: Finding | None, check: str) -> str:
    """A score-based (black-box, query) attack ran: in the grid, as the C6 probe, in the ART cross-check or against
    a deployment."""
    names = score_based_attacks()
    out = _grid_queries(result, names)
    for g in (g for g in result.findings if usable(g)):
        out += [s for s in (_probe_queries(g), _art_queries(g, names), _deployment_queries(g, names)) if s]
    return "; ".join(out)


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
    "defences_compared": Fact("a defended variant and another variant attacked with the same attacks and eps",
                              _defences_compared),
    "query_attack_ran": Fact("a score-based (black-box, query) attack ran", _query_attack_ran),
}


def holds(name: str, result: AuditResult, finding: Finding | None = None, check: str = "") -> str:
    """What shows fact ``name`` on this result ("" when it does not hold); an unknown name is a KeyError."""
    return FACTS[name].fn(result, finding, check)

"""Join a result to framework data: the NIST AI RMF 1.0 subcategories, the threats not measured and the crosswalk
(data files in audit/frameworks/). Every claim goes through a rule of coverage.toml over the named facts of
audit/frameworks/facts.py: a check's declared control counts only when its finding ran and was judged and what its
check rule needs holds; a run-level rule only when its fact holds. "Not measured" comes from the same facts, and a
subcategory that is the whole of a threat listed as not measured is never claimed. All of it is a pure function of
the result: ``refresh_claims`` recomputes it for a stored result with the current rules."""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import tomllib

from audit.core.result import AuditResult, Control, Finding, NotMeasured, SubcategoryStatus
from audit.frameworks.facts import holds, usable

_STRENGTH_RANK = {"direct": 2, "supporting": 1}


@cache
def nist_rmf() -> dict:
    return json.loads(resources.files("audit.frameworks").joinpath("nist_ai_rmf_1.0.json").read_text("utf-8"))


@cache
def coverage() -> dict:
    return tomllib.loads(resources.files("audit.frameworks").joinpath("coverage.toml").read_text("utf-8"))


def subcategories() -> list[tuple[str, str, dict]]:
    """(function id, category id, subcategory dict) for all 72 subcategories, in framework order."""
    return [(f["id"], c["id"], s) for f in nist_rmf()["functions"] for c in f["categories"]
            for s in c["subcategories"]]


@dataclass(frozen=True)
class Claim:
    """One piece of evidence for a subcategory: its reference ("run:policy" or a finding id), strength, and what
    the rule's fact found (empty for a check's control that needs nothing beyond its finding)."""

    ref: str
    strength: str
    basis: str = ""


def check_rules(check: str, subcategory: str) -> list[dict]:
    return [r for r in coverage().get("check_rules", []) if r["check"] == check and r["subcategory"] == subcategory]


def finding_claims(result: AuditResult, f: Finding) -> tuple[list[tuple[str, Claim]], list[tuple[str, str]]]:
    """(subcategory, claim) for each declared control of ``f`` whose rules hold, and (subcategory, why not) for
    each whose check rule fails on a usable finding."""
    claims, missing = [], []
    if not usable(f):
        return [], []
    for c in f.controls:
        rules = check_rules(f.check, c.id)
        found = [(r, holds(r["needs"], result, f, f.check)) for r in rules]
        failed = [r for r, what in found if not what]
        if failed:
            missing += [(c.id, r.get("missing", "")) for r in failed]
            continue
        basis = "; ".join(f"{f.id}: {what} ({r['why']})" for r, what in found)
        claims.append((c.id, Claim(f.id, c.strength, basis)))
    return claims, missing


def run_claims(result: AuditResult) -> tuple[list[tuple[str, Claim]], list[tuple[str, str]]]:
    """(subcategory, claim) for each run-level rule whose fact holds; (subcategory, missing) for the others."""
    claims, missing = [], []
    for r in coverage()["rules"]:
        what = holds(r["needs"], result, None, r.get("check", ""))
        if what:
            claims.append((r["subcategory"], Claim(f"run:{r['evidence']}", r["strength"],
                                                   f"run:{r['evidence']}: {what} ({r['why']})")))
        else:
            missing.append((r["subcategory"], r.get("missing", "")))
    return claims, missing


def _reason(sub: str, fn: str, missing: dict[str, list[str]], idle: dict[str, list[str]]) -> str:
    reasons = coverage()["not_measured_reasons"]
    said = [m for m in missing.get(sub, []) if m]
    if said:
        return " ".join(dict.fromkeys(said))
    if sub in reasons:
        return reasons[sub]
    if idle.get(sub):
        return f"The findings that would give evidence did not run or were not judged: {', '.join(idle[sub])}."
    return reasons[f"default_{fn.lower()}"]


def _gather(result: AuditResult) -> tuple[dict[str, list[Claim]], dict[str, list[str]], dict[str, list[str]]]:
    """subcategory -> the claims whose rules hold; -> the ``missing`` texts of rules that failed; -> the findings
    that declare it but did not run or were not judged."""
    claims, missing_pairs = run_claims(result)
    idle: dict[str, list[str]] = {}
    for f in result.findings:
        got, lost = finding_claims(result, f)
        claims += got
        missing_pairs += lost
        for c in () if usable(f) else f.controls:
            idle.setdefault(c.id, []).append(f"{f.id} ({f.status.value})")
    by_sub: dict[str, list[Claim]] = {}
    for sub, claim in claims:
        by_sub.setdefault(sub, []).append(claim)
    missing: dict[str, list[str]] = {}
    for sub, why in missing_pairs:
        missing.setdefault(sub, []).append(why)
    return by_sub, missing, idle


def nist_status(result: AuditResult) -> tuple[SubcategoryStatus, ...]:
    """Every subcategory with the evidence its rules find on this result, or the reason it is not measured; one that
    is the whole of a threat this result does not measure gets no claim (whatever a finding declares)."""
    by_sub, missing, idle = _gather(result)
    unmeasured = {t.threat: t.why for t in not_measured_threats(result)}
    blocked = {sub: unmeasured[threat] for threat, sub in threat_subcategories().items() if threat in unmeasured}
    out = []
    for fn, cat, item in subcategories():
        sid, got = item["id"], [] if item["id"] in blocked else by_sub.get(item["id"], [])
        if got:
            status = "evidence" if max(_STRENGTH_RANK[c.strength] for c in got) == 2 else "supporting"
            out.append(SubcategoryStatus(sid, fn, cat, item["text"], status, tuple(dict.fromkeys(c.ref for c in got)),
                                         basis=tuple(c.basis for c in got if c.basis)))
        else:
            reason = coverage()["not_measured_reasons"].get(sid, blocked[sid]) if sid in blocked else \
                _reason(sid, fn, missing, idle)
            out.append(SubcategoryStatus(sid, fn, cat, item["text"], "not measured", (), reason))
    return tuple(out)


def _why(t: dict, result: AuditResult, found: str) -> str:
    """The threat's why: that of its first case whose fact holds ("{found}": what that fact found), else its own."""
    for case in t.get("cases", ()):
        what = holds(case["when"], result, None, t.get("check", ""))
        if what:
            return case["why"].replace("{found}", what)
    return t["why"].replace("{found}", found)


def not_measured_threats(result: AuditResult) -> tuple[NotMeasured, ...]:
    """The threats this run does not measure, decided by the same facts as the claims."""
    out = []
    for t in coverage()["not_measured"]:
        if t.get("unless") and holds(t["unless"], result, None, t.get("check", "")):
            continue
        found = holds(t["when"], result, None, t.get("check", "")) if t.get("when") else ""
        if t.get("when") and not found:
            continue
        out.append(NotMeasured(threat=t["threat"], reference=t["reference"], why=_why(t, result, found)))
    return tuple(out)


_NOT_MEASURED_COUNT = re.compile(r"^\d+ (threat classes were not measured)")  # audit/engine/assemble.residual_risk


def refresh_claims(result: AuditResult, declared: Mapping[str, tuple[Control, ...]] | None = None) -> AuditResult:
    """``result`` with its claims recomputed by the current rules: ``not_measured``, the count of them in
    ``residual_risk``, ``nist`` and the editions they refer to. A stored (older or crafted) result's table is never
    trusted. ``declared``: check id -> the controls its check declares now (``{k: c.controls for k, c in
    CHECKS.items()}``; this room cannot import the checks): each finding's stored controls are replaced by them (an
    unknown check declares none), so an old or crafted finding's control claims nothing. Without it the findings'
    stored controls are used."""
    if declared is not None:
        result = dataclasses.replace(result, findings=tuple(
            dataclasses.replace(f, controls=tuple(declared.get(f.check, ()))) for f in result.findings))
    result = dataclasses.replace(result, not_measured=(), nist=())
    not_measured = not_measured_threats(result)
    risk = tuple(_NOT_MEASURED_COUNT.sub(f"{len(not_measured)} \\1", line) for line in result.residual_risk)
    result = dataclasses.replace(result, not_measured=not_measured, residual_risk=risk, frameworks=editions())
    return dataclasses.replace(result, nist=nist_status(result))


def threat_subcategories() -> dict[str, str]:
    """threat -> the NIST subcategory it is the whole of (never claimed while the threat is not measured)."""
    return {t["threat"]: t["subcategory"] for t in coverage()["not_measured"] if t.get("subcategory")}


def run_evidence_titles() -> dict[str, str]:
    return {f"run:{k}": v for k, v in coverage()["evidence"].items()}


def crosswalk(check_id: str) -> dict:
    return coverage().get("crosswalk", {}).get(check_id, {})


def editions() -> dict[str, str]:
    """The framework editions every ID in the report refers to (ATLAS pinned to one release)."""
    return dict(coverage()["editions"])

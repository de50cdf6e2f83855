"""Join findings to framework data: the NIST AI RMF 1.0 subcategories and the crosswalk (data files in
audit/frameworks/). This module holds no mapping itself; checks declare theirs, coverage.toml declares the rest."""
from __future__ import annotations

import json
from functools import cache
from importlib import resources

import tomllib

from audit.core.result import Finding, Status, SubcategoryStatus

_STRENGTH_RANK = {"direct": 2, "supporting": 1}
_USABLE = {Status.PASS, Status.WARN, Status.FAIL, Status.INFO}  # a crashed or skipped check is no evidence


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


def nist_status(findings: tuple[Finding, ...]) -> tuple[SubcategoryStatus, ...]:
    """Every subcategory with the strongest evidence this run gives for it, or the reason it is not measured."""
    evidence: dict[str, dict[str, int]] = {}
    for f in findings:
        if f.status in _USABLE:
            for c in f.controls:
                evidence.setdefault(c.id, {})[f.id] = _STRENGTH_RANK[c.strength]
    for key, item in coverage()["run_evidence"].items():
        for cid, strength in item["controls"].items():
            evidence.setdefault(cid, {})[f"run:{key}"] = _STRENGTH_RANK[strength]
    reasons = coverage()["not_measured_reasons"]
    out = []
    for fn, cat, sub in subcategories():
        ev = evidence.get(sub["id"], {})
        if ev:
            best = max(ev.values())
            status = "evidence" if best == 2 else "supporting"
            out.append(SubcategoryStatus(sub["id"], fn, cat, sub["text"], status, tuple(ev)))
        else:
            reason = reasons.get(sub["id"], reasons[f"default_{fn.lower()}"])
            out.append(SubcategoryStatus(sub["id"], fn, cat, sub["text"], "not measured", (), reason))
    return tuple(out)


def run_evidence_titles() -> dict[str, str]:
    return {f"run:{k}": v["title"] for k, v in coverage()["run_evidence"].items()}


def crosswalk(check_id: str) -> dict:
    return coverage().get("crosswalk", {}).get(check_id, {})


def editions() -> dict[str, str]:
    """The framework editions every ID in the report refers to (ATLAS pinned to one release)."""
    return dict(coverage()["editions"])

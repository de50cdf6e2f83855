"""Presentation helpers shared by the HTML and Markdown templates (derived from the result, never stored)."""
from __future__ import annotations

from audit.checks import CHECKS
from audit.checks.attack_validity import AttackValidity
from audit.checks.calibration import Calibration
from audit.checks.certified import Certified
from audit.checks.corruptions import Corruptions
from audit.checks.ood import Ood
from audit.checks.robustness import Robustness, RobustnessDetails
from audit.core.metrics import WORST_CASE, same_eps
from audit.core.result import AuditResult, Status, Verdict
from audit.frameworks.controls import crosswalk, nist_rmf, run_evidence_titles
from reports.actions import GAPS_ANCHOR, actions, anchor, meaning, reason, reason_lead
from reports.svg import PALETTE, Series, line_chart, scatter_chart

STATUS_ORDER = [Status.FAIL, Status.ERROR, Status.WARN, Status.PASS, Status.INFO, Status.SKIPPED]


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def defences(result: AuditResult) -> list[dict]:
    """The run's ``[[defences]]`` tables as its config recorded them (none: only the model as given)."""
    return [d for d in result.config.get("defences") or () if isinstance(d, dict)]


def robustness_heading(result: AuditResult) -> str:
    """The robustness section's title, as the run is: defence wording only when defended variants were audited."""
    methods = {d.get("method") for d in defences(result)}
    if not methods:
        return "Robustness under attack"
    return ("Robustness with and without the declared defences" if methods == {"none"}
            else "Robustness with and without adversarial training")


def training_cell(v) -> str:
    """What the table's training cell says of a variant this run did not train (its weights were supplied)."""
    return "supplied model (not trained here)" if v.train_seconds is None else ""


def robustness_rows(result: AuditResult) -> tuple[list[float], list[dict]]:
    """The variants table: worst-case robust accuracy per eps for each variant (each defence and the model)."""
    grid = sorted({p.eps for v in result.variants for p in v.robustness})
    rows = []
    for v in result.variants:
        by_eps = {p.eps: p for p in v.robustness if p.attack == WORST_CASE}
        cf = next((f for f in result.findings if f.check == Corruptions.id and f.variant == v.name), None)
        mce = cf.metrics.get("mce") if cf is not None else None
        reference = cf is not None and cf.details is not None and cf.details.relative_to == v.name
        rob = next((f.details for f in result.findings if f.check == Robustness.id and f.variant == v.name
                    and f.details is not None), None)
        estimated = {w.eps: w.estimated_from for w in (rob.worst_case if rob is not None else ()) if w.estimated_from}
        rows.append({"variant": v, "cells": [by_eps.get(e) for e in grid], "mce": mce, "mce_reference": reference,
                     "estimated": [estimated.get(e, "") for e in grid], "training": training_cell(v)})
    return grid, rows


def certified_series(result: AuditResult, colors: dict[str, str]) -> list[Series]:
    """Per variant with certificates: the certified lower bound (dotted, clean accuracy at eps 0) and the hatched
    band up to the worst case at the same eps, where the truth lies unknown."""
    out = []
    for f in result.findings:
        if f.check != Certified.id or f.details is None or not f.details.points or f.variant not in colors or \
                f.details.soundness.status is Status.FAIL:   # an unsound certificate proves nothing: not drawn
            continue
        v = next(v for v in result.variants if v.name == f.variant)
        pts = sorted(f.details.points, key=lambda p: p.eps)
        clean = (v.clean_accuracy.value,) if v.clean_accuracy else ()
        x = ((0.0,) if clean else ()) + tuple(p.eps for p in pts)
        cert = clean + tuple(p.certified for p in pts)
        out.append(Series(label=f"{v.name} certified", x=x, y=cert, low=cert,
                          high=clean + tuple(p.empirical for p in pts), dotted=True, hatched=True,
                          color=colors[v.name]))
    return out


def robustness_chart(result: AuditResult) -> str:
    """The robust-accuracy curve per variant (clean at eps 0), and where the run certified, the proven lower bound
    with the band between the two; "" when no variant has two points to join."""
    series: list[Series] = []
    for v in result.variants:
        pts = sorted((p for p in v.robustness if p.attack == WORST_CASE), key=lambda p: p.eps)
        if not pts:
            continue
        clean = v.clean_accuracy
        xs = ((0.0,) if clean else ()) + tuple(p.eps for p in pts)
        ys = ((clean.value,) if clean else ()) + tuple(p.robust_accuracy for p in pts)
        lo = ((clean.ci_low,) if clean else ()) + tuple(p.ci_low for p in pts)
        hi = ((clean.ci_high,) if clean else ()) + tuple(p.ci_high for p in pts)
        series.append(Series(label=v.name, x=xs, y=ys, low=lo, high=hi, dashed=not v.candidate,
                             color=PALETTE[len(series) % len(PALETTE)]))
    if not any(len(s.x) >= 2 for s in series):
        return ""
    bounds = certified_series(result, {s.label: s.color for s in series})
    floor = None
    rob = next((f for f in result.findings if f.check == Robustness.id and f.details is not None
                and f.details.policy_floor is not None), None)
    if rob is not None:
        floor = (rob.details.policy_floor, "policy floor")
    norm = next((p.norm for v in result.variants for p in v.robustness), "linf")
    return line_chart(series + bounds, title="Robust accuracy vs eps (worst case over attacks, 95% CI)",
                      x_label=f"eps ({norm}, input units; 0 = clean)", y_label="accuracy", hline=floor)


def tradeoff_chart(result: AuditResult) -> str:
    """Clean vs worst-case robust accuracy at the policy's gated eps (else the middle of the grid), per variant;
    "" with fewer than two variants to compare (one point is no trade-off)."""
    grid = sorted({p.eps for v in result.variants for p in v.robustness})
    if not grid:
        return ""
    rob = next((f for f in result.findings if f.check == Robustness.id and f.details is not None), None)
    eps = rob.details.gated_eps if rob is not None else grid[len(grid) // 2]
    points = []
    for v in result.variants:
        at = [p for p in v.robustness if p.attack == WORST_CASE and same_eps(p.eps, eps)]
        if at and v.clean_accuracy:
            points.append((v.name, v.clean_accuracy.value, at[0].robust_accuracy, v.best))
    return scatter_chart(points, title=f"Clean vs robust accuracy (worst case at eps {eps:g})",
                         x_label="clean accuracy", y_label=f"robust accuracy at eps {eps:g}") \
        if len(points) >= 2 else ""


def reliability_chart(result: AuditResult) -> str:
    """Reliability diagram of the candidate's clean test predictions: accuracy vs confidence per bin."""
    f = next((f for f in result.findings if f.check == Calibration.id and f.variant == result.candidate
              and f.details is not None), None)
    if f is None:
        return ""
    bins = [b for b in f.details.reliability if b.count]
    if len(bins) < 2:  # one bin is a point, not a diagram
        return ""
    xs = tuple(b.confidence for b in bins)
    ideal = Series(label="perfect calibration", x=(0.0, 1.0), y=(0.0, 1.0), dashed=True)
    model = Series(label=f"{result.candidate}", x=xs, y=tuple(b.accuracy for b in bins))
    return line_chart([ideal, model], title=f"Reliability of '{result.candidate}' (clean test, 15 bins)",
                      x_label="mean confidence in bin", y_label="accuracy in bin")


def quality_tables(result: AuditResult) -> dict:
    """Calibration, corruption and OOD findings per variant, for the report's tables."""
    out = {}
    for check in (Calibration.id, Corruptions.id, Ood.id):
        out[check] = [f for f in result.findings if f.check == check and f.details is not None]
    return out


def validity_table(result: AuditResult) -> dict:
    """Validity-check id -> {name, variant -> ValidityResult}, for the checks-by-variant table."""
    table: dict = {}
    for f in result.findings:
        if f.check not in (AttackValidity.id, Certified.id) or f.details is None:
            continue
        found = f.details.validity_checks if f.check == AttackValidity.id else (f.details.soundness,)
        for g in found:
            row = table.setdefault(g.id, {"name": g.name, "variants": {}})
            row["variants"][f.variant] = g
    return table


def robustness_details(result: AuditResult) -> RobustnessDetails | None:
    """The candidate's robustness details (attack settings, per-class table), or None."""
    return next((f.details for f in result.findings if f.check == Robustness.id and f.variant == result.candidate
                 and f.details is not None), None)


def headline(result: AuditResult) -> list[str]:
    """The summary's "under attack" sentence(s) of the candidate: its robustness finding, led by the band "between
    X% (certified) and Y% (worst of N attacks)" when the certified check bounded it (plain text)."""
    cert = next((f.details for f in result.findings if f.check == Certified.id and f.variant == result.candidate
                 and f.details is not None and f.details.band), None)
    lead = f"{cert.band}; " if cert is not None else ""
    return [lead + f.summary for f in result.findings if f.check == Robustness.id and f.variant == result.candidate]


def notes(finding) -> tuple[str, ...]:
    """The bullets its check shows under a finding in the findings table."""
    check = CHECKS.get(finding.check)
    return check.notes(finding) if check is not None else ()


def sections(result: AuditResult) -> list[tuple[str, list]]:
    """(check id, its findings) for every registered check with findings, in registry (report) order: each is
    rendered by its partial templates/checks/<id>.html.j2."""
    return [(c, fs) for c in CHECKS if (fs := [f for f in result.findings if f.check == c])]


def verdict_line(result: AuditResult) -> str:
    """The terminal's line: "verdict: NO-GO for candidate 'x': <the reason>" (an INCOMPLETE run's reason is its
    gaps: "; missing: ..."; a NO-GO or an ERROR with evidence gaps adds "; also missing: ..."); a screening's
    verdict says it is not a sign-off. Plain text: the caller escapes for its medium."""
    line = f"verdict: {result.verdict.label} for candidate {result.candidate!r}"
    if result.verdict is not Verdict.INCOMPLETE:
        line += f": {reason_lead(result)}"
    if result.evidence_gaps:
        word = "missing" if result.verdict is Verdict.INCOMPLETE else "also missing"
        line += f"; {word}: " + "; ".join(result.evidence_gaps)
    return line + (" (screening, not a sign-off)" if result.policy.purpose == "screening" else "")


def status_counts(result: AuditResult) -> dict[str, int]:
    counts = {s.value: 0 for s in STATUS_ORDER}
    for f in result.findings:
        counts[f.status.value] += 1
    return counts


def nist_sections(result: AuditResult) -> list[dict]:
    titles = {f["id"]: f["text"] for f in nist_rmf()["functions"]}
    sections = []
    for fn in ("GOVERN", "MAP", "MEASURE", "MANAGE"):
        items = [s for s in result.nist if s.function == fn]
        sections.append({"id": fn, "text": titles[fn], "subcategories": items,
                         "measured": sum(1 for s in items if s.status != "not measured")})
    return sections


def evidence_label(ref: str, result: AuditResult) -> str:
    if ref.startswith("run:"):
        return run_evidence_titles().get(ref, ref)
    f = next((f for f in result.findings if f.id == ref), None)
    return f"{ref} ({f.status.value})" if f else ref


def context(result: AuditResult) -> dict:
    grid, rows = robustness_rows(result)
    chart = robustness_chart(result)
    return {"r": result, "grid": grid, "rows": rows, "pct": pct, "chart": chart,
            "tradeoff": tradeoff_chart(result), "reliability": reliability_chart(result),
            "quality": quality_tables(result), "validity": validity_table(result),
            "rob": robustness_details(result), "headline": headline(result), "notes": notes,
            "counts": status_counts(result), "sections": sections(result), "nist_sections": nist_sections(result),
            "evidence_label": lambda ref: evidence_label(ref, result), "crosswalk": crosswalk,
            "worst_case": WORST_CASE, "reason": reason(result), "reason_lead": reason_lead(result),
            "meaning": meaning(result), "actions": actions(result), "anchor": anchor, "gaps_anchor": GAPS_ANCHOR,
            "robustness_heading": robustness_heading(result), "defended": bool(defences(result)),
            "candidate": next((v for v in result.variants if v.candidate), None),
            "certified_band": 'data-band="unknown"' in chart}

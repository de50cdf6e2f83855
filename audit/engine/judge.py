"""Measurement + the policy's declared threshold -> a finding with a status. No check code knows its thresholds."""
from __future__ import annotations

from audit.config.policy import Threshold
from audit.core.result import Finding, Measurement, Status, Verdict


def judge_value(value: float, t: Threshold) -> Status:
    if t.min is not None and value < t.min:
        return Status.FAIL
    if t.max is not None and value > t.max:
        return Status.FAIL
    if t.warn_min is not None and value < t.warn_min:
        return Status.WARN
    if t.warn_max is not None and value > t.warn_max:
        return Status.WARN
    return Status.PASS


def judge(m: Measurement, check, threshold: Threshold | None, gating: bool) -> Finding:
    """The finding of ``m`` under ``threshold``. A check's ``with_threshold`` adds what depends on the threshold
    (robustness: the breaking eps); a measurement's ``at_best`` is the check's own evidence that its number is weaker
    than it looks (an inconclusive self-test, a failed validity check): it caps the status, never raises it."""
    if m.error is None and m.skipped is None:
        m = check.with_threshold(m, threshold)
    fid = check.id if m.variant is None else f"{check.id}:{m.variant}"
    common = dict(id=fid, check=check.id, title=check.title, variant=m.variant, metrics=dict(m.metrics),
                  details=m.details, controls=check.controls, gating=gating,
                  threshold=threshold.describe() if threshold else None)
    if m.error is not None:
        return Finding(status=Status.ERROR, summary=f"check failed: {m.error}", **common)
    if m.skipped is not None:
        return Finding(status=Status.SKIPPED, summary=f"skipped: {m.skipped}", **common)
    if threshold is None:
        return Finding(status=Status.INFO, summary=m.summary, **common)
    if threshold.key not in m.metrics:
        return Finding(status=Status.ERROR, summary=f"the policy threshold asks for metric {threshold.key!r}, which "
                       f"this check did not measure (measured: {', '.join(sorted(m.metrics))})", **common)
    status = judge_value(m.metrics[threshold.key], threshold)
    if m.at_best is Status.WARN and status is Status.PASS:
        status = Status.WARN
    if m.at_best is Status.FAIL and status in (Status.PASS, Status.WARN):
        status = Status.FAIL
    return Finding(status=status, summary=m.summary, **common)


def verdict(findings: tuple[Finding, ...], gaps: tuple[str, ...] = ()) -> Verdict:
    """The run's verdict from its gating findings and its ``gaps`` (what it lacks of the policy's ``[evidence]``,
    audit/engine/evidence.py): ERROR > NO_GO > INCOMPLETE > GO. A failure stays NO-GO whatever is missing; a run
    with gaps and no failure can never be GO."""
    gating = [f for f in findings if f.gating]
    if any(f.status is Status.ERROR for f in gating):
        return Verdict.ERROR
    if any(f.status is Status.FAIL for f in gating):
        return Verdict.NO_GO
    if gaps:
        return Verdict.INCOMPLETE
    return Verdict.GO

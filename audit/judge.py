"""Measurement + the policy's declared gate -> a finding with a status. No check code knows its thresholds."""
from __future__ import annotations

from audit.policy import Gate
from audit.result import Finding, Measurement, Status, Verdict


def judge_value(value: float, gate: Gate) -> Status:
    if gate.min is not None and value < gate.min:
        return Status.FAIL
    if gate.max is not None and value > gate.max:
        return Status.FAIL
    if gate.warn_min is not None and value < gate.warn_min:
        return Status.WARN
    if gate.warn_max is not None and value > gate.warn_max:
        return Status.WARN
    return Status.PASS


def judge(m: Measurement, check, gate: Gate | None, gating: bool) -> Finding:
    fid = check.id if m.variant is None else f"{check.id}:{m.variant}"
    common = dict(id=fid, check=check.id, title=check.title, variant=m.variant, metrics=dict(m.metrics),
                  details=dict(m.details), controls=check.controls, gating=gating,
                  gate=gate.describe() if gate else None)
    if m.error is not None:
        return Finding(status=Status.ERROR, summary=f"check failed: {m.error}", **common)
    if m.skipped is not None:
        return Finding(status=Status.SKIPPED, summary=f"skipped: {m.skipped}", **common)
    if gate is None:
        return Finding(status=Status.INFO, summary=m.summary, **common)
    if gate.key not in m.metrics:
        return Finding(status=Status.ERROR, summary=f"the policy gate asks for metric {gate.key!r}, which this "
                       f"check did not measure (measured: {', '.join(sorted(m.metrics))})", **common)
    status = judge_value(m.metrics[gate.key], gate)
    if m.at_best is Status.WARN and status is Status.PASS:
        status = Status.WARN
    return Finding(status=status, summary=m.summary, **common)


def verdict(findings: tuple[Finding, ...]) -> Verdict:
    gating = [f for f in findings if f.gating]
    if any(f.status is Status.ERROR for f in gating):
        return Verdict.ERROR
    if any(f.status is Status.FAIL for f in gating):
        return Verdict.NO_GO
    return Verdict.GO

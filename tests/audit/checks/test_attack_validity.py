"""attack_validity: C1-C16 on a variant, statuses in the findings' vocabulary, problems shown under the finding."""
from __future__ import annotations

from audit.checks import CHECKS
from audit.core.result import Measurement, Status
from audit.engine.judge import judge


def test_every_validity_check_reports_a_status_of_the_enum(small_ctx):
    check = CHECKS["attack_validity"]
    m = check.measure(small_ctx, "baseline")
    statuses = [r.status for r in m.details.validity_checks]
    assert statuses and all(isinstance(s, Status) for s in statuses)
    assert m.metrics["validity_failures"] == statuses.count(Status.FAIL)
    assert m.metrics["validity_warnings"] == statuses.count(Status.WARN)
    assert len(m.details.problems) == statuses.count(Status.FAIL) + statuses.count(Status.WARN)
    assert (m.at_best is Status.WARN) == (Status.WARN in statuses and Status.FAIL not in statuses)


def test_its_notes_are_the_problems(small_ctx):
    check = CHECKS["attack_validity"]
    m = check.measure(small_ctx, "baseline")
    f = judge(m, check, None, gating=True)
    assert check.notes(f) == m.details.problems
    assert check.notes(judge(Measurement(check=check.id, error="boom"), check, None, gating=True)) == ()

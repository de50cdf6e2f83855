import pytest

from audit.checks import CHECKS
from audit.config.policy import Threshold
from audit.core.result import Measurement, Status, Verdict
from audit.engine.judge import judge, judge_value, verdict


@pytest.mark.parametrize("value,gate,expected", [
    (0.95, Threshold("m", min=0.9, warn_min=0.96), Status.WARN),
    (0.97, Threshold("m", min=0.9, warn_min=0.96), Status.PASS),
    (0.80, Threshold("m", min=0.9, warn_min=0.96), Status.FAIL),
    (0.01, Threshold("m", max=0.05, warn_max=0.02), Status.PASS),
    (0.03, Threshold("m", max=0.05, warn_max=0.02), Status.WARN),
    (0.06, Threshold("m", max=0.05), Status.FAIL),
    (0.0, Threshold("m", max=0), Status.PASS),
])
def test_judge_value(value, gate, expected):
    assert judge_value(value, gate) is expected


def test_judge_uses_the_eps_specific_metric_and_reports_missing_metrics():
    check = CHECKS["robustness"]
    m = Measurement(check="robustness", variant="v", metrics={"worst_case_robust_accuracy@0.1": 0.4}, summary="s")
    assert judge(m, check, Threshold("worst_case_robust_accuracy", eps=0.1, min=0.5), True).status is Status.FAIL
    missing = judge(m, check, Threshold("worst_case_robust_accuracy", eps=0.3, min=0.5), True)
    assert missing.status is Status.ERROR and "worst_case_robust_accuracy@0.3" in missing.summary
    assert judge(m, check, None, True).status is Status.INFO


def test_errors_and_skips_are_kept_as_findings():
    check = CHECKS["clean_accuracy"]
    err = judge(Measurement(check=check.id, error="RuntimeError: boom"), check, Threshold(check.id, min=0.9), True)
    assert err.status is Status.ERROR and "boom" in err.summary
    skip = judge(Measurement(check=check.id, skipped="no labels"), check, None, True)
    assert skip.status is Status.SKIPPED


def _f(status, gating=True):
    check = CHECKS["clean_accuracy"]
    m = Measurement(check=check.id, metrics={"clean_accuracy": 1.0})
    f = judge(m, check, None, gating)
    return type(f)(**{**f.__dict__, "status": status})


@pytest.mark.parametrize("statuses,gating,expected", [
    ([Status.PASS, Status.WARN, Status.INFO], True, Verdict.GO),
    ([Status.PASS, Status.FAIL], True, Verdict.NO_GO),
    ([Status.FAIL, Status.ERROR], True, Verdict.ERROR),
    ([Status.FAIL, Status.ERROR], False, Verdict.GO),  # non-gating findings never decide
])
def test_verdict(statuses, gating, expected):
    assert verdict(tuple(_f(s, gating) for s in statuses)) is expected
    assert expected.exit_code == {Verdict.GO: 0, Verdict.NO_GO: 1, Verdict.ERROR: 3}[expected]

"""robustness: every attack at every eps, the per-example worst case, and the breaking eps under the policy."""
from __future__ import annotations

import pytest

from audit.checks import CHECKS
from audit.config.policy import Threshold
from audit.core.metrics import WORST_CASE, metric_key
from audit.core.result import Status
from audit.engine.judge import judge


def test_metrics_cover_the_grid_and_the_worst_case_is_the_lowest(small_ctx):
    m = CHECKS["robustness"].measure(small_ctx, "baseline")
    for eps in small_ctx.config.attacks.eps:
        worst = m.metrics[metric_key("worst_case_robust_accuracy", eps)]
        per_attack = [v for k, v in m.metrics.items() if k.startswith("robust_accuracy_") and k.endswith(f"@{eps:g}")]
        assert per_attack and worst <= min(per_attack)
    assert m.details.policy_floor is None and m.details.breaking_eps is None   # measure knows no policy


def test_the_judge_adds_the_breaking_eps_from_the_policy_floor(small_ctx):
    check = CHECKS["robustness"]
    m = check.measure(small_ctx, "baseline")
    worst = [p for p in m.details.points if p.attack == WORST_CASE]
    floor = (worst[0].robust_accuracy + worst[-1].robust_accuracy) / 2 + 1e-9
    t = Threshold("worst_case_robust_accuracy", eps=small_ctx.gated_eps, min=floor)
    f = judge(m, check, t, gating=True)
    expected = next((p.eps for p in worst if p.robust_accuracy < floor), None)
    assert f.details.breaking_eps == expected and f.details.policy_floor == floor
    assert "policy floor" in f.summary and "policy floor" not in m.summary
    never = judge(m, check, Threshold("worst_case_robust_accuracy", eps=small_ctx.gated_eps, min=0.0), True)
    assert never.details.breaking_eps is None and "stays above" in never.summary and never.status is Status.PASS


def test_breaks_recorded_by_other_attacks_count_in_the_worst_case(small_ctx):
    """A full-set attack outside the grid that breaks grid-robust points lowers the reported worst case at its eps
    and every larger one, names its source per example, and flags those test points in triage."""
    import numpy as np

    from audit.checks.run_view import Breaks, RobustnessGrid
    check = CHECKS["robustness"]
    grid = small_ctx.get(RobustnessGrid, "baseline")
    eps = min(small_ctx.config.attacks.eps)
    robust = grid.correct[(WORST_CASE, eps)]
    victims = np.flatnonzero(robust)[:3]
    assert victims.size == 3
    broken = np.zeros(robust.size, bool)
    broken[victims] = True
    ledger = small_ctx.get(Breaks, "baseline")
    kept, ledger.records = ledger.records, []     # other tests' checks on this shared context recorded theirs
    ledger.add("test attack", "test", eps, np.arange(robust.size), np.ones(robust.size, bool), broken)
    try:
        m = check.measure(small_ctx, "baseline")
    finally:
        ledger.records = kept
    for e in small_ctx.config.attacks.eps:
        w = next(w for w in m.details.worst_case if w.eps == e)
        assert w.value == w.measured and w.value <= w.grid
        if e == eps:
            assert w.extra["test attack"] == 3 and w.grid - w.value == pytest.approx(3 / robust.size)
    rows: dict = {}
    check.triage(m.details, lambda split, i: rows.setdefault((split, i), {}))
    if np.isclose(small_ctx.gated_eps, eps):
        assert {i for _, i in rows} == set(victims.tolist())
        assert all(r["broken_outside_grid"] == "test attack" for r in rows.values())


def test_a_failed_validity_check_makes_the_number_an_unreliable_failure(small_ctx):
    """Above the policy floor, a robustness number a failed validity check contradicts is a failure labelled
    unreliable, in the finding, its notes and the residual risk."""
    from audit.checks.validity import ValidityResult
    from audit.core.result import Measurement
    check = CHECKS["robustness"]
    fake = CHECKS["attack_validity"].Details(
        validity_checks=(ValidityResult("C6", "black-box not stronger than white-box", Status.FAIL,
                                        "native Square breaks 9 of the 10 points"),
                         ValidityResult("C5", "noise weaker than attack", Status.WARN, "noise close")),
        problems=(), probe_points=10, probe_eps=0.1, skipped_attacks={})
    key = "attack_validity:baseline"
    small_ctx.measurements[key] = Measurement(check="attack_validity", variant="baseline", details=fake)
    try:
        m = check.measure(small_ctx, "baseline")
    finally:
        del small_ctx.measurements[key]
    assert m.summary.startswith("unreliable (C6 black-box not stronger than white-box contradict it)")
    assert m.details.unreliable == ("C6 black-box not stronger than white-box: native Square breaks 9 of the 10 "
                                    "points",)
    f = judge(m, check, Threshold("worst_case_robust_accuracy", eps=small_ctx.gated_eps, min=0.0), gating=True)
    assert f.status is Status.FAIL
    assert check.notes(f) == ("unreliable: " + m.details.unreliable[0],)
    assert "unreliable" in check.residual_risk(f) and "C6" in check.residual_risk(f)
    clean = check.measure(small_ctx, "baseline")
    assert not clean.details.unreliable and clean.at_best is None

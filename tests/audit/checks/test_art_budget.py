"""The ART cross-check's budget: at most max_share of the variant's attack time, at least the floor (min_points or
the paired test's need), at most the points cap; stratified, seeded points that keep every class and both broken
and robust points; the budget stated in the details and the report. ART runs on at most 32 points here."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audit.checks import CHECKS
from audit.checks.run_view import Breaks, RobustnessGrid
from audit.config.art_agreement import ArtAgreementConfig
from audit.core.errors import UsageError
from audit.core.metrics import WORST_CASE, same_eps
from audit.methods import art_budget
from audit.methods.art_budget import SQUARE_FLOOR, Rates, size, strata_of, stratified_order

STEPS = {"fgsm": 1, "pgd": 10, "apgd_ce": 25}
RATES = Rates({"fgsm": 1e-3, "pgd": 1e-3, "apgd_ce": 1e-3, "square": 1e-3}, rows=8)   # 36 ms per judged point


# --- sizing ------------------------------------------------------------------------------------------------------

def test_the_budget_caps_the_points_between_the_floor_and_the_cap():
    s = size(RATES, STEPS, 100 * 0.036 + 1e-6, floor=50, cap=200)
    assert (s.points, s.limited_by) == (100, "budget") and s.planned == pytest.approx(3.6)
    roomy = size(RATES, STEPS, 1e3, floor=50, cap=200)
    assert (roomy.points, roomy.limited_by) == (200, "points")


def test_the_floor_wins_when_the_budget_is_below_it():
    for allowed in (0.0, 1e-4, 49 * 0.036):
        s = size(RATES, STEPS, allowed, floor=50, cap=200)
        assert (s.points, s.limited_by) == (50, "floor") and s.planned == pytest.approx(50 * 0.036)
    assert size(RATES, STEPS, 0.0, floor=500, cap=200).points == 200   # the floor never exceeds the cap


def test_square_gets_what_the_judged_attacks_leave_between_its_floor_and_its_cap():
    steps = {**STEPS, "square": 100}   # 0.1 s per Square point
    tight = size(RATES, steps, 0.0, floor=50, cap=200, square_cap=64)
    assert tight.square_points == SQUARE_FLOOR
    left = size(RATES, steps, 200 * 0.036 + 3.05, floor=50, cap=200, square_cap=64)   # 3.05 s left: 30 points
    assert (left.points, left.square_points) == (200, 30)
    assert size(RATES, steps, 1e3, floor=50, cap=200, square_cap=64).square_points == 64


def test_a_run_on_fewer_points_than_the_calibration_costs_the_calibrations_worth():
    assert RATES.seconds("pgd", 10, 2) == RATES.seconds("pgd", 10, 8) == pytest.approx(0.08)
    assert RATES.seconds("pgd", 10, 0) == 0.0 and RATES.seconds("pgd", 10, 16) == pytest.approx(0.16)


def test_the_attack_time_prices_the_grids_counted_passes_or_its_planned_ones():
    from audit.config import AttackConfig
    from audit.core.metrics import RobustnessPoint
    mask = np.ones(4, dtype=bool)
    points = (RobustnessPoint.of("pgd", "linf", 0.1, mask, passes=100, forward_passes=10),
              RobustnessPoint.of("fgsm", "linf", 0.1, mask, passes=4),
              RobustnessPoint.of(WORST_CASE, "linf", 0.1, mask, passes=104, forward_passes=10))  # no attack of its own
    assert art_budget.attack_seconds(points, None, 4, 0.01, 0.001) == (pytest.approx(1.04 + 0.01), "measured")
    a = AttackConfig(preset="quick", eps=(0.1, 0.2))      # FGSM + PGD-10: 11 gradient passes per point and eps
    seconds, source = art_budget.attack_seconds(None, a, 50, 0.01, 0.001)
    assert source == "planned" and seconds == pytest.approx(11 * 50 * 2 * 0.01)


# --- stratified, seeded order ------------------------------------------------------------------------------------

def test_every_prefix_keeps_every_class_and_both_broken_and_robust_points_each_stratum_in_proportion():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 400)
    clean = rng.random(400) > 0.1
    robust = clean & (rng.random(400) > 0.95)             # few robust points: strata of 0-5 points per class
    strata, kind, how = strata_of(y, clean, robust)
    assert "broken by the grid" in how and set(kind) == {0, 1, 2}
    order = stratified_order(strata, seed=0, cover=(y, kind))
    assert sorted(order.tolist()) == list(range(400))
    for n in (13, 16, 40, 167):                           # 10 classes + 3 kinds: from 13 points on
        head = order[:n]
        assert set(y[head]) == set(y) and set(kind[head]) == {0, 1, 2}
        assert (clean & robust)[head].any() and (clean & ~robust)[head].any()
        for s in np.unique(strata):                       # in proportion, within two points
            assert abs((strata[head] == s).sum() - n * (strata == s).mean()) <= 2, (n, s)
    plain = stratified_order(strata, seed=0)              # cover only moves at most 13 points to the front
    moved = order[:13]
    assert np.array_equal(order[13:], plain[~np.isin(plain, moved)])


def test_the_order_is_deterministic_given_the_seed():
    strata = np.random.default_rng(2).integers(0, 12, 300)
    assert np.array_equal(stratified_order(strata, 5, (strata % 4,)), stratified_order(strata, 5, (strata % 4,)))
    assert not np.array_equal(stratified_order(strata, 5), stratified_order(strata, 6))
    assert "grid had not run" in strata_of(np.zeros(3), np.ones(3, bool), None)[2]


# --- config ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [{"max_share": 0.0}, {"max_share": 1.5}, {"max_share": float("nan")},
                                 {"min_points": -1}])
def test_the_budget_settings_refuse_what_cannot_work(bad):
    ArtAgreementConfig(max_share=1.0, min_points=500).validate("checks.art_agreement")
    with pytest.raises(UsageError, match=next(iter(bad))):
        ArtAgreementConfig(**bad).validate("checks.art_agreement")


def test_the_dry_run_sizes_the_cross_check_at_its_floor_when_the_sweep_is_cheap():
    from types import SimpleNamespace

    import torch

    from audit.config import AttackConfig, AuditConfig
    from audit.engine.dryrun import Costs, estimate
    costs = Costs(train_row=1e-3, grad_row=2e-4, forward_row=1e-4, small_forward_row=5e-4, corruption_call=0.5,
                  art_grad_row=3e-4, art_query_row=4e-4)
    data = SimpleNamespace(x_train=torch.zeros(200, 1, 8, 8), x_test=torch.zeros(50, 1, 8, 8))
    config = AuditConfig(checks=("art_agreement",), attacks=AttackConfig(preset="quick", art_crosscheck_points=40),
                         art_agreement=ArtAgreementConfig(min_points=20))
    ctx = SimpleNamespace(config=config, data=data, user_model=None, setup=SimpleNamespace(trainable=None))
    stage = {s.name: s for s in estimate(ctx, costs)}["check art_agreement:baseline"]
    a = config.attacks
    assert stage.fwd_bwd == 20 * (1 + a.pgd_steps + a.apgd_steps)   # 50 test points: a sweep far below the floor


# --- the check: budget in the details and the report --------------------------------------------------------------

@pytest.fixture(scope="module")
def budget_ctx(small_ctx):
    """small_ctx with a floor of 8 points and a cap of 32, the baseline's grid computed (it stratifies)."""
    config = dataclasses.replace(small_ctx.config, art_agreement=ArtAgreementConfig(min_points=8))
    ctx = dataclasses.replace(small_ctx, setup=dataclasses.replace(small_ctx.setup, config=config))
    ctx.get(RobustnessGrid, "baseline")
    return ctx


def measured(ctx, monkeypatch, attack_seconds: float):
    monkeypatch.setattr(art_budget, "attack_seconds", lambda *a, **k: (attack_seconds, "measured"))
    before = len(ctx.get(Breaks, "baseline").records)
    m = CHECKS["art_agreement"].measure(ctx, "baseline")
    return m, ctx.get(Breaks, "baseline").records[before:]


def test_a_tiny_attack_time_runs_the_floor_and_the_details_and_report_say_so(budget_ctx, monkeypatch):
    from audit.engine.judge import judge
    from reports.templating import render
    from reports.view import pct
    m, records = measured(budget_ctx, monkeypatch, 1e-3)
    b = m.details.budget
    assert (b.points, b.floor, b.cap, b.limited_by, b.max_share) == (8, 8, 32, "floor", 0.15)
    assert m.details.points == 8 and all(c.points == 8 for c in m.details.attacks.values())
    assert b.seconds.attack == pytest.approx(1e-3) and b.seconds.allowed == pytest.approx(1.5e-4)
    assert b.seconds.spent > b.seconds.allowed and b.seconds.share == pytest.approx(b.seconds.spent / 1e-3, rel=1e-3)
    assert "fewer than min_points 8" in m.details.too_small and "needs 167" in m.details.too_small
    assert {r.population.size for r in records} == {8}
    finding = judge(m, CHECKS["art_agreement"], None, False)
    html = render("checks/art_agreement.html.j2", autoescape=True, findings=[finding], pct=pct)
    assert "over its budget of 15.0%" in html and "the 8 points a meaningful comparison needs ran anyway" in html


def test_a_roomy_budget_reaches_the_cap_on_stratified_points_the_same_each_time(budget_ctx, monkeypatch):
    m, records = measured(budget_ctx, monkeypatch, 1e6)
    b = m.details.budget
    assert (b.points, b.limited_by, b.attack_time) == (32, "points", "measured")
    assert "broken by the grid" in b.stratified_by and "32 points" in m.details.settings["pgd"]
    idx = records[0].population
    d, grid = budget_ctx.data, budget_ctx.get(RobustnessGrid, "baseline")
    robust = next(v for (a, e), v in grid.correct.items() if a == WORST_CASE and same_eps(e, budget_ctx.gated_eps))
    clean = budget_ctx.clean_correct("baseline")
    assert set(d.y_test[idx].tolist()) == set(d.y_test.tolist())              # every class present
    assert (clean & robust)[idx].any() and (clean & ~robust)[idx].any()       # broken and robust points both
    again, records2 = measured(budget_ctx, monkeypatch, 1e6)
    assert np.array_equal(records2[0].population, idx) and again.metrics == m.metrics

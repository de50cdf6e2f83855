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
from audit.methods.art_budget import SQUARE_FLOOR, Rates, ladder, on_ladder, size, strata_of, stratified_order

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
    assert (left.points, left.square_points, left.sized_from) == (200, 16, "timings")  # 16 x 2^k: 16
    more = size(RATES, steps, 200 * 0.036 + 3.35, floor=50, cap=200, square_cap=64)   # 33 points: 32
    assert (more.points, more.square_points) == (200, 32)
    roomy = size(RATES, steps, 1e3, floor=50, cap=200, square_cap=64)
    assert (roomy.square_points, roomy.sized_from) == (64, "settings")


def test_the_ladder_is_the_floor_doubled_up_to_the_cap():
    assert ladder(167, 5000) == (167, 334, 668, 1336, 2672, 5000)
    assert ladder(50, 200) == (50, 100, 200) and ladder(300, 200) == (200,) and ladder(0, 3) == (1, 2, 3)
    assert [on_ladder(n, 167, 5000) for n in (3418, 3977, 3917)] == [2672] * 3   # the reviewer's three reruns
    assert (on_ladder(100, 167, 5000), on_ladder(5000, 167, 5000), on_ladder(4999, 167, 5000)) == (167, 5000, 2672)


def test_timings_that_differ_by_a_fifth_judge_the_same_count():
    allowed = 3418 * 0.036                                # 3418 points at RATES, 2848 at 1.2x, 4272 at 0.8x
    sizes = [size(Rates({k: v * f for k, v in RATES.per_step.items()}, rows=8), STEPS, allowed, floor=167,
                  cap=10_000) for f in (1.0, 1.2, 0.8)]
    assert {(s.points, s.limited_by, s.sized_from) for s in sizes} == {(2672, "budget", "timings")}
    assert size(RATES, STEPS, allowed, floor=167, cap=2000).sized_from == "settings"   # the cap: nothing timed


def test_the_calibration_warms_up_before_it_times(monkeypatch):
    import time
    from types import SimpleNamespace

    import torch

    from attacks.base import Norm
    calls = []

    def ours(model, x, y, ball, params, generator=None):  # the first call of the process costs 50 ms more
        time.sleep(0.05 if not calls else 0.0)
        calls.append(params.get("steps", 1))

    fake = SimpleNamespace(function=ours, make=lambda **k: k)
    monkeypatch.setattr(art_budget, "ATTACKS", {"fgsm": fake, "pgd": fake})
    monkeypatch.setattr(art_budget, "art_classifier", lambda *a: None)
    monkeypatch.setattr(art_budget, "art_attack", lambda *a, **k: SimpleNamespace(generate=lambda **kw: None))
    rates = art_budget.calibrate(torch.nn.Linear(3, 2), torch.zeros(4, 3), {"fgsm": {}, "pgd": {"steps": 10}},
                                 (0.0, 1.0), Norm.LINF, num_classes=2, seed=0, batch_size=4)
    assert calls == [1, 1, 3]                             # the untimed warm-up, then FGSM's step and PGD's three
    assert rates.per_step["fgsm"] < 0.05 / 4 and rates.rows == 4


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


def test_the_attack_time_is_the_grid_stages_own_seconds_where_it_ran_here(monkeypatch):
    from types import SimpleNamespace

    import torch

    from audit.checks.art_agreement import attack_time
    from audit.config import AttackConfig
    from audit.core.metrics import RobustnessPoint
    grid = SimpleNamespace(points=(RobustnessPoint.of("pgd", "linf", 0.1, np.ones(4, bool), passes=100),))
    stages = {"attack grid:baseline": 12.5, "attack grid:at": 99.0}
    view = SimpleNamespace(config=SimpleNamespace(attacks=AttackConfig(preset="quick", eps=(0.1,))),
                           data=SimpleNamespace(x_test=torch.zeros(4, 3), y_test=torch.zeros(4, dtype=torch.long)),
                           variants={"baseline": SimpleNamespace(model=torch.nn.Linear(3, 2))},
                           computed=lambda kind, v: grid if kind is RobustnessGrid else None,
                           stage_seconds=lambda name: stages.get(name))
    monkeypatch.setattr(art_budget, "row_seconds", lambda *a: (0.01, 0.001))
    assert attack_time(view, "baseline", np.arange(4)) == (12.5, "timed")
    stages.clear()                                        # another executor ran it: its passes, priced
    assert attack_time(view, "baseline", np.arange(4)) == (pytest.approx(1.0), "measured")
    view.computed = lambda kind, v: None                  # not run: its planned passes (and no stage asked for)
    view.stage_seconds = lambda name: pytest.fail("asked for a stage of a grid that has not run")
    assert attack_time(view, "baseline", np.arange(4))[1] == "planned"


def test_the_context_reads_a_stage_that_ran_here_and_not_one_whose_units_ran_elsewhere(budget_ctx):
    from audit.checks.art_agreement import attack_time
    from audit.core.result import StageRecord
    from audit.engine.record import Recorder
    ran = budget_ctx.stage_seconds("attack grid:baseline")
    assert ran is not None and ran > 0 and budget_ctx.stage_seconds("attack grid:nothing") is None
    assert attack_time(budget_ctx, "baseline", np.arange(4)) == (ran, "timed")
    remote = dataclasses.replace(budget_ctx, recorder=Recorder())
    remote.recorder.add(StageRecord(name="attack grid:baseline", seconds=3.0))
    assert remote.stage_seconds("attack grid:baseline") == 3.0
    remote.recorder.add(StageRecord(name="attack shard 1/1", seconds=2.0, parent="attack grid:baseline",
                                    node="worker-1:123"))
    assert remote.stage_seconds("attack grid:baseline") is None


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
    from audit.checks import art_agreement
    monkeypatch.setattr(art_agreement, "attack_time", lambda *a, **k: (attack_seconds, "measured"))
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
    assert "priced from the grid's counted passes" in html and b.sized_from == "settings"
    timed = dataclasses.replace(b, limited_by="budget", sized_from="timings", attack_time="timed")
    finding = judge(dataclasses.replace(m, details=dataclasses.replace(m.details, budget=timed)),
                    CHECKS["art_agreement"], None, False)
    html = render("checks/art_agreement.html.j2", autoescape=True, findings=[finding], pct=pct)
    assert "set the points from the calibration's timings, rounded down to 8 x 2^k" in html
    assert "the grid's own time in this run" in html


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

"""The worst case over everything a run measured (audit/methods/worst_case.py), on synthetic grids."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attacks.base import Ball
from audit.core.metrics import WORST_CASE
from audit.methods.worst_case import BreakLedger, consolidate, verified_breaks

N = 1000


def grid(robust_at: dict[float, np.ndarray]) -> dict:
    out = {}
    for eps, m in robust_at.items():
        out[("pgd", eps)] = m.copy()
        out[(WORST_CASE, eps)] = m.copy()
    return out


def test_full_set_breaks_lower_the_worst_case_and_carry_to_larger_eps():
    clean = np.ones(N, bool)
    g = grid({0.1: np.arange(N) < 800, 0.2: np.arange(N) < 600})
    ledger = BreakLedger(N)
    broken = np.zeros(N, bool)
    broken[700:750] = True            # 50 points the grid left robust at 0.1
    ledger.add("deployments: Square", "deployments", 0.1, np.arange(N), clean, broken)
    c = consolidate(g, ledger, clean)
    at = {w.eps: w for w in c.points}
    assert at[0.1].value == pytest.approx(0.75) and at[0.1].grid == pytest.approx(0.8)
    assert at[0.1].extra["deployments: Square"] == 50 and not at[0.1].estimated_from
    assert at[0.2].value == pytest.approx(0.6)       # 700-750 already broken by the grid at 0.2
    assert c.sources[0.2]["deployments: Square"][700:750].all()   # a break at 0.1 is one at 0.2


def test_the_worst_case_never_rises_with_eps():
    clean = np.ones(N, bool)
    hi = np.arange(N) < 500
    hi[900:] = True                   # 100 points robust at 0.2 that the grid broke at 0.1
    c = consolidate(grid({0.1: np.arange(N) < 800, 0.2: hi}), None, clean)
    at = {w.eps: w.value for w in c.points}
    assert at[0.2] <= at[0.1] and at[0.2] == pytest.approx(0.5)


def test_a_subsample_attack_that_breaks_what_the_grid_missed_gives_an_estimate_at_most_its_accuracy():
    """The gradient-masked shape: the grid keeps 96%, Square on 64 of 256 probe points breaks 62 of them."""
    rng = np.random.default_rng(0)
    robust = rng.random(N) < 0.96
    clean = robust | (rng.random(N) < 0.5)
    probe = np.sort(rng.choice(N, 256, replace=False))
    survivors = np.flatnonzero(robust[probe])[:64]
    attacked = np.zeros(256, bool)
    attacked[survivors] = True
    broken = np.zeros(256, bool)
    broken[survivors[:62]] = True
    ledger = BreakLedger(N)
    ledger.add("C6 Square (validity probe)", "attack_validity", 0.3, probe, attacked, broken)
    w = consolidate(grid({0.3: robust}), ledger, clean).points[0]
    square_accuracy = 2 / 64
    assert w.value <= square_accuracy and w.estimated_from and w.n == 256
    assert w.measured == pytest.approx((robust.sum() - 62) / N)
    assert w.ci_low <= w.value <= w.ci_high


def test_a_subsample_attack_that_finds_nothing_new_leaves_the_full_set_number():
    clean = np.ones(N, bool)
    robust = np.arange(N) < 700
    pop = np.arange(0, N, 4)
    ledger = BreakLedger(N)
    ledger.add("ART APGD (cross-check)", "art_agreement", 0.3, pop, np.ones(pop.size, bool), ~robust[pop])
    w = consolidate(grid({0.3: robust}), ledger, clean).points[0]
    assert w.value == pytest.approx(0.7) and not w.estimated_from and w.n == N


def test_a_record_at_a_larger_eps_does_not_count_at_a_smaller_one():
    clean = np.ones(N, bool)
    ledger = BreakLedger(N)
    ledger.add("C4-like", "x", 0.5, np.arange(N), clean, clean)
    w = consolidate(grid({0.3: np.ones(N, bool)}), ledger, clean).points[0]
    assert w.value == 1.0


@pytest.mark.parametrize("population", [np.array([3, 2]), np.array([0, N])])
def test_the_ledger_refuses_bad_indices(population):
    with pytest.raises(ValueError):
        BreakLedger(N).add("s", "c", 0.1, population, np.ones(2, bool), np.ones(2, bool))


def test_only_verified_breaks_count():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
        model[1].bias.zero_()
    x = torch.full((3, 4), 0.5)
    y = torch.zeros(3, dtype=torch.long)                       # class 0 while x[0] > 0
    adv = x.clone()
    adv[:, 0] = torch.tensor([-0.2, 0.0, 1.5])                 # outside the ball / inside but not wrong / outside range
    adv[1, 0] = 0.45
    ball = Ball(0.1, clip=(0.0, 1.0))
    assert not verified_breaks(model, x, adv, y, ball).any()
    adv[1, 0] = -0.01  # outside the range [0, 1]
    assert not verified_breaks(model, x, adv, y, Ball(0.6, clip=(0.0, 1.0))).any()
    assert verified_breaks(model, x, adv, y, Ball(0.6, clip=(-1.0, 1.0)))[1]


def test_an_estimate_at_a_smaller_eps_caps_the_number_at_every_larger_one():
    """A subsample attack at 0.1 estimates 40%; the grid alone keeps 60% at 0.2: 0.2 reports at most 40%."""
    clean = np.ones(N, bool)
    g = grid({0.1: np.arange(N) < 800, 0.2: np.arange(N) < 600})
    pop = np.arange(0, N, 10)
    broken = (pop >= 300) & (pop < 800)            # half of the subsample's grid-robust points at 0.1
    ledger = BreakLedger(N)
    ledger.add("probe", "attack_validity", 0.1, pop, np.ones(pop.size, bool), broken)
    at = {w.eps: w for w in consolidate(g, ledger, clean).points}
    assert at[0.1].estimated_from and at[0.1].value == pytest.approx(0.75 * (1 - 50 / 80))
    assert at[0.2].value <= at[0.1].value and "at most" in at[0.2].estimated_from

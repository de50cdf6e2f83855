"""The worst case over everything a run measured on a variant.

The attack grid attacks every test point with every attack at every eps. Other parts of the run attack test points
too: the validity probes (C3's stronger attacks, C5's noise, C6's Square), the ART cross-check and the deployment
check's attacks on the source. Each of those records which points it attacked and which it broke
(:class:`BreakLedger`); a break counts wherever it is valid:

* at its own eps and at every larger eps of the grid (an example inside a ball is inside every larger one), and
* for the variant it was found on.

The reported robust accuracy at an eps is then

* the share of all test points no attack broke (``measured``: an upper bound, every break is a real adversarial
  example), or, lower,
* where an attack that ran on a random subsample (``population``) broke points every full-set attack left robust:
  ``measured`` times the share of the grid-robust points it attacked that survived it (a ratio estimate: the
  subsample is random, so this estimates the full-set number that attack would have measured, without the
  sampling noise of the subsample's own accuracy). It is reported with the subsample's wider interval and says so.

Breaks must be verified before they are recorded: the example lies inside the ball and the valid range and the
variant misclassifies it (``verified_breaks``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from attacks.base import Ball, Norm, frozen_eval
from audit.core.metrics import WORST_CASE, Accuracy, same_eps
from audit.core.stats import wilson_interval


@dataclass(frozen=True)
class BreakRecord:
    """One attack that ran outside the grid. ``population``: sorted test indices of the random subsample it stands
    for (every test index when it ran on all points); ``attacked`` and ``broken``: booleans over ``population``."""

    source: str         # "C6 Square (5,000 queries, validity probe)"
    check: str          # the id of the check that ran it
    eps: float
    population: np.ndarray
    attacked: np.ndarray
    broken: np.ndarray


class BreakLedger:
    """The breaks recorded for one variant, in the order the checks found them."""

    def __init__(self, n_test: int):
        self.n_test = n_test
        self.records: list[BreakRecord] = []

    def add(self, source: str, check: str, eps: float, population, attacked, broken) -> None:
        pop = np.asarray(population, dtype=np.int64)
        att, brk = np.asarray(attacked, dtype=bool), np.asarray(broken, dtype=bool)
        if not (pop.shape == att.shape == brk.shape) or pop.ndim != 1:
            raise ValueError(f"{source}: population, attacked and broken must be 1-D and of one length")
        if pop.size and (pop.min() < 0 or pop.max() >= self.n_test or np.any(np.diff(pop) <= 0)):
            raise ValueError(f"{source}: population must be sorted, distinct test indices")
        self.records.append(BreakRecord(source, check, float(eps), pop, att, brk & att))


def verified_breaks(model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, ball: Ball,
                    batch_size: int = 512) -> np.ndarray:
    """Per row: ``x_adv`` lies within ``ball`` of ``x`` (a float tolerance of 1e-5 of eps) and inside the clip
    range, and ``model`` misclassifies it. An example from another library counts only when this holds."""
    delta = (x_adv.float() - x.float()).flatten(1)
    size = delta.abs().amax(1) if Norm(ball.norm) is Norm.LINF else delta.norm(dim=1)
    inside = size <= ball.eps * (1 + 1e-5) + 1e-7
    lo, hi = ball.clip
    lo_t, hi_t = (torch.as_tensor(v, dtype=torch.float32) for v in (lo, hi))
    in_range = ((x_adv.float() >= lo_t - 1e-6) & (x_adv.float() <= hi_t + 1e-6)).flatten(1).all(1)
    wrong = []
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with frozen_eval(model), torch.no_grad():
        for i in range(0, x_adv.shape[0], batch_size):
            out = model(x_adv[i:i + batch_size].to(device)).argmax(1).cpu()
            wrong.append(out != y[i:i + batch_size].cpu())
    miss = torch.cat(wrong) if wrong else torch.zeros(0, dtype=torch.bool)
    return (inside.cpu() & in_range.cpu() & miss).numpy()


@dataclass(frozen=True)
class WorstCase:
    """The reported worst case at one eps and how it was reached."""

    eps: float
    value: float
    ci_low: float
    ci_high: float
    n: int                       # the points the reported number is a share of
    grid: float                  # the grid's own per-example worst case, all points
    measured: float              # all points, every recorded break counted
    estimated_from: str = ""     # why the reported number is a subsample estimate ("" when it is ``measured``)
    extra: dict[str, int] = field(default_factory=dict)   # source -> points it broke that the grid left robust
    covered: dict[str, int] = field(default_factory=dict)  # source -> how many points it attacked


@dataclass(frozen=True)
class Consolidated:
    points: tuple[WorstCase, ...]
    robust: dict[float, np.ndarray]          # eps -> per test point: no attack broke it (the ``measured`` mask)
    sources: dict[float, dict[str, np.ndarray]]  # eps -> source -> per test point: it broke the point here


def consolidate(correct: dict, ledger: BreakLedger | None, clean_ok: np.ndarray) -> Consolidated:
    """The worst case at every eps of the grid (``correct``: (attack, eps) -> robust mask over all test points,
    with the WORST_CASE key) over the grid and every record of ``ledger``; ``clean_ok``: clean correctness (a clean
    error is no attack's break)."""
    grid_eps = sorted({e for a, e in correct if a == WORST_CASE})
    records = ledger.records if ledger is not None else []
    n = len(clean_ok)
    points: list[WorstCase] = []
    robust_at: dict[float, np.ndarray] = {}
    sources_at: dict[float, dict[str, np.ndarray]] = {}
    grid_closed = np.ones(n, dtype=bool)
    sources: dict[str, np.ndarray] = {}
    for eps in grid_eps:
        grid_closed = grid_closed & correct[(WORST_CASE, eps)]   # breaks at smaller eps hold here too
        sources = {k: v.copy() for k, v in sources.items()}
        for (attack, e), mask in correct.items():
            if attack != WORST_CASE and same_eps(e, eps):
                sources[attack] = sources.get(attack, np.zeros(n, dtype=bool)) | (~mask & clean_ok)
        applying = [r for r in records if r.eps <= eps * (1 + 1e-9)]
        robust = grid_closed.copy()
        for r in applying:
            hit = r.population[r.broken]
            robust[hit] = False
            mask = sources.setdefault(r.source, np.zeros(n, dtype=bool))
            mask[hit] |= clean_ok[hit]
        w = _reported(eps, correct[(WORST_CASE, eps)], grid_closed, robust, applying)
        if points and w.value > points[-1].value:   # a larger ball contains the smaller: never report more here
            prev = points[-1]
            w = WorstCase(**{**w.__dict__, "value": prev.value, "ci_low": min(prev.ci_low, w.ci_low),
                             "ci_high": min(prev.ci_high, w.ci_high), "n": prev.n,
                             "estimated_from": f"at most the {prev.value:.1%} reported at eps {prev.eps:g} (a larger "
                                               f"ball contains the smaller): {prev.estimated_from}"})
        points.append(w)
        robust_at[eps], sources_at[eps] = robust, sources
    return Consolidated(tuple(points), robust_at, sources_at)


def _reported(eps: float, grid: np.ndarray, grid_closed: np.ndarray, robust: np.ndarray,
              applying: list[BreakRecord]) -> WorstCase:
    n = len(robust)
    measured = Accuracy.of(robust)
    extra: dict[str, int] = {}
    covered: dict[str, int] = {}
    low: tuple[float, str, BreakRecord] | None = None
    for r in applying:
        target = grid_closed[r.population] & r.attacked      # grid-robust points the attack tried
        new = int((r.broken & target).sum())
        extra[r.source] = extra.get(r.source, 0) + new
        covered[r.source] = max(covered.get(r.source, 0), int(r.attacked.sum()))
        if new and r.population.size < n:
            survival = 1.0 - new / int(target.sum())
            value = measured.value * survival
            if low is None or value < low[0]:
                low = (value, f"estimated: {r.source} broke {new} of the {int(target.sum())} points it attacked "
                              f"on a random subsample of {r.population.size} that every full-set attack left "
                              f"robust, so that share of the full-set robust points is counted as broken", r)
    value, ci_low, ci_high, m, why = measured.value, measured.ci_low, measured.ci_high, n, ""
    if low is not None and low[0] < measured.value:
        value, why, r = low
        m = r.population.size
        lo, hi = wilson_interval(int(round(value * m)), m)   # the subsample's uncertainty, not the full set's
        ci_low, ci_high = min(lo, value), max(hi, value)
    return WorstCase(eps=eps, value=value, ci_low=ci_low, ci_high=ci_high, n=m, grid=float(grid.mean()) if n else 0.0,
                     measured=measured.value, estimated_from=why, extra=extra, covered=covered)

"""The ART cross-check's budget (audit/checks/art_agreement.py): which test points it re-attacks, and how many.

Seconds: at most ``max_share`` of the variant's attack time, the attack grid's: the grid stage's wall seconds in
the run record where the grid ran in this process (channels-last layouts and traced forwards included), else its
counted passes (its planned ones, an upper bound, when the grid has not run yet) times our model's measured seconds
per input-gradient and forward row. Points: the judged gradient attacks (FGSM, PGD, APGD-CE) share one subsample
of at least ``floor`` points (``min_points``, or the fewest on which the paired test can show ``detect_shortfall``)
and at most the cap (``art_crosscheck_points`` and the test split); Square, reported and not judged, gets what the
budget leaves, at least ``SQUARE_FLOOR`` points and at most its own cap. What each attack costs per point and step,
ours and ART's together, is measured on a small calibration batch at a tiny eps with the model's own labels, so
that every point is attacked for every step: the estimate is a bound. One untimed step of the first attack on both
sides comes first (without it the first attack timed paid torch's and ART's first calls). A count the budget sets
is rounded down to its ladder, floor x 2^k up to the cap (``ladder``), so that reruns whose timings differ by less
than 2x judge the same points, and the details say it was sized from timings (``sized_from``). When the budget
cannot pay for the floor, the floor runs (the details say the budget was exceeded); at the floor or the cap the
subsample depends on nothing measured.

Which points: one seeded order of the test split, stratified by class and by what the grid did at the gated eps
(clean error, broken, robust; clean error or not when the grid has not run), each stratum in proportion in every
prefix; the first point of each class and of each kind comes first, so every prefix keeps every class and both
broken and robust points.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import Ball, frozen_eval, loss_gradient, model_device
from audit.core.metrics import WORST_CASE
from audit.methods.art_adapter import art_attack, art_classifier, one_hot
from audit.methods.seeding import seeded

SQUARE_FLOOR = 16     # Square's fewest points (reported, not judged: it checks our implementation, not the model)
CAL_ROWS = 32         # points of the attack calibration
CAL_STEPS = {"fgsm": 1, "pgd": 3, "apgd_ce": 3, "square": 10}   # steps (queries) each attack runs to be timed
ROW_BATCH = 256       # rows our input-gradient and forward passes are timed on (at most attacks.batch_size)
TINY_EPS = 1e-6       # the calibration's eps: no point breaks, every step runs
STEP_KEY = {"pgd": "steps", "apgd_ce": "steps", "square": "queries"}   # the setting that counts an attack's steps


@dataclass(frozen=True)
class ArtBudgetSeconds:
    """The budget's seconds: they vary from run to run (tools/normalise_results.py blanks this block)."""

    attack: float     # the variant's attack time: the grid stage's seconds, or its passes at our seconds per row
    allowed: float    # max_share x attack
    planned: float    # the calibrated estimate (a bound) of both sides' attacks on the points chosen
    spent: float      # measured: ART's import, the calibration, both sides' attacks and the verification
    share: float      # spent / attack (0 when the attack time is 0)


@dataclass(frozen=True)
class ArtBudget:
    """What the cross-check cost and what bounded its points. ``limited_by``: "budget" (the seconds allowed
    ``points``), "floor" (the budget could not pay for the floor: the floor ran, over budget) or "points" (the cap,
    ``art_crosscheck_points`` and the test split, bound first: the budget had room). ``attack_time``: "timed" (the
    grid stage's wall seconds in this run's record: the grid ran in this process), "measured" (the grid's counted
    passes at our model's seconds per row: it ran on another executor) or "planned" (the grid had not run: its
    planned passes, an upper bound). ``sized_from``: "timings" (the budget set the counts from the calibration's
    timings, each rounded down to its ladder, floor x 2^k) or "settings" (the floor and the caps set them)."""

    max_share: float
    points: int            # the judged attacks' subsample (FGSM, PGD, APGD-CE)
    square_points: int     # Square's (0: not run on this variant)
    floor: int             # the fewest points the judged attacks run on, whatever the budget (capped by the cap)
    cap: int               # art_crosscheck_points and the test split
    limited_by: str
    attack_time: str
    stratified_by: str     # what the seeded order is stratified by
    seconds: ArtBudgetSeconds
    sized_from: str = "settings"


@dataclass(frozen=True)
class Rates:
    """Seconds per point and step (query) of each attack, ours and ART's together, timed on ``rows`` points. A run
    on fewer points costs ``rows`` points' worth (its per-step overhead stays)."""

    per_step: dict[str, float]
    rows: int = 0

    def seconds(self, name: str, steps: int, points: int) -> float:
        return self.per_step[name] * steps * max(points, self.rows) if points else 0.0


@dataclass(frozen=True)
class Sizing:
    points: int
    square_points: int
    limited_by: str
    planned: float
    sized_from: str = "settings"   # "timings": the budget set a count (rounded down to its ladder)


def art_batch(batch_size: int, points: int) -> int:
    """ART's batch: the whole subsample at once (ART's NumPy attacks pay their overhead per batch and step), at most
    attacks.batch_size (what pre-flight probed)."""
    return max(1, min(batch_size, points))


def with_spent(b: ArtBudget, seconds: float) -> ArtBudget:
    """``b`` with the seconds the cross-check spent and their share of the attack time."""
    share = seconds / b.seconds.attack if b.seconds.attack > 0 else 0.0
    return dataclasses.replace(b, seconds=dataclasses.replace(b.seconds, spent=round(seconds, 6),
                                                              share=round(share, 4)))


def steps_of(name: str, params: dict) -> int:
    """The steps (queries) of one attack's settings: what its cost is proportional to."""
    key = STEP_KEY.get(name)
    return int(params[key]) if key else 1


def stratified_order(strata: np.ndarray, seed: int, cover: tuple[np.ndarray, ...] = ()) -> np.ndarray:
    """Every index of ``strata`` (one label per point) in a seeded order whose every prefix is stratified: the j-th
    point of a stratum of k (in a seeded shuffle) at (j + u) / k of the way, u a seeded offset per stratum (each
    stratum in proportion, within a point); then the first point of each value of every labelling in ``cover``
    (each class, each kind) moved to the front, so that every prefix at least that long has them all."""
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(strata.size)
    key = np.empty(strata.size)
    for s in np.unique(strata):
        members = shuffled[strata[shuffled] == s]
        key[members] = (np.arange(members.size) + rng.random()) / members.size
    order = np.lexsort((rng.permutation(strata.size), key))
    first = np.zeros(strata.size, dtype=bool)
    for labels in cover:
        _, at = np.unique(np.asarray(labels)[order], return_index=True)
        first[order[at]] = True
    return np.concatenate([order[first[order]], order[~first[order]]])


def strata_of(y: np.ndarray, clean_ok: np.ndarray, robust: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Each point's stratum, class x kind, and its kind: clean error, broken by the grid, robust (0, 1, 2), or
    clean error or not (0, 1) when the grid has not run (``robust`` None); and their description."""
    y, clean_ok = np.asarray(y, dtype=np.int64), np.asarray(clean_ok, dtype=bool)
    if robust is None:
        kind, how = clean_ok.astype(np.int64), "class x clean error or not (the grid had not run)"
    else:
        kind = np.where(clean_ok, np.where(np.asarray(robust, dtype=bool), 2, 1), 0)
        how = "class x (clean error, broken by the grid, robust) at the gated eps"
    return y * 3 + kind, kind, how


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (a CUDA call returns before it has run), so that timings are true."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def row_seconds(model, x: torch.Tensor, y: torch.Tensor, reps: int = 2) -> tuple[float, float]:
    """Our model's seconds per input-gradient row and per forward row on ``x`` (after a warm-up, the fastest of
    ``reps``)."""
    device = model_device(model)
    xs, ys = x.to(device), y.to(device)

    def fastest(fn) -> float:
        fn()
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            _sync(device)
            best = min(best, time.perf_counter() - start)
        return best / max(x.shape[0], 1)

    with frozen_eval(model):
        grad = fastest(lambda: loss_gradient(model, xs, ys))
        with torch.no_grad():
            forward = fastest(lambda: model(xs))
    return grad, forward


def calibrate(model, x: torch.Tensor, runs: dict[str, dict], clip, norm, *, num_classes: int, seed: int,
              batch_size: int) -> Rates:
    """Per attack of ``runs`` (name -> our settings), the seconds per point and step of ours and ART's together on
    ``x``, at a tiny eps and the model's own labels (no point breaks: the bound), each side with CAL_STEPS steps,
    after one untimed step of the first attack on both sides (the warm-up: torch's and ART's first calls)."""
    import art.attacks.evasion  # noqa: F401  (imported before timing: its import is no attack's cost)
    was, device = model.training, model_device(model)
    ball = Ball(TINY_EPS, norm, (clip[0].to(device), clip[1].to(device)) if isinstance(clip[0], torch.Tensor)
                else clip)
    per_step = {}
    try:
        with frozen_eval(model), torch.no_grad():
            y = model(x.to(device)).argmax(1)
        clf = art_classifier(model, x.shape[1:], num_classes, clip)

        def both(name: str, cal: dict) -> float:
            spec = ATTACKS[name]
            start = time.perf_counter()
            spec.function(model, x.to(device), y, ball, spec.make(**cal),
                          generator=torch.Generator(device=device).manual_seed(seed))
            _sync(device)
            with seeded(seed):
                art_attack(name, clf, eps=TINY_EPS, norm=norm.value, params=cal,
                           batch_size=batch_size).generate(x=x.cpu().numpy(), y=one_hot(y, num_classes))
            return time.perf_counter() - start

        if runs:
            first = next(iter(runs))
            both(first, _calibration_settings(first, runs[first], 1))
        for name, params in runs.items():
            cal = _calibration_settings(name, params, CAL_STEPS[name])
            per_step[name] = both(name, cal) / (steps_of(name, cal) * max(x.shape[0], 1))
    finally:
        model.train(was)
    return Rates(per_step, int(x.shape[0]))


def _calibration_settings(name: str, params: dict, steps: int) -> dict:
    """``params`` with at most ``steps`` steps (queries)."""
    key = STEP_KEY.get(name)
    return {**params, key: min(steps, params[key])} if key else dict(params)


def ladder(floor: int, cap: int) -> tuple[int, ...]:
    """The counts a budget-limited subsample may take: floor x 2^k below ``cap``, then ``cap`` (``floor`` at most
    ``cap``, at least 1)."""
    if cap <= 0:
        return (max(cap, 0),)
    n, rungs = max(1, min(floor, cap)), []
    while n < cap:
        rungs.append(n)
        n *= 2
    return (*rungs, cap)


def on_ladder(points: int, floor: int, cap: int) -> int:
    """``points`` rounded down to ``ladder(floor, cap)`` (its lowest rung when below it): timings that differ by
    less than 2x give the same count."""
    rungs = ladder(floor, cap)
    return max((r for r in rungs if r <= points), default=rungs[0])


def _affordable(per_point: float, overhead_points: int, seconds: float, cap: int) -> int:
    """The most points ``seconds`` pay for at ``per_point`` seconds each (a run costs at least ``overhead_points``
    points' worth), at most ``cap``."""
    if per_point <= 0:
        return cap
    if seconds < per_point * overhead_points:
        return 0
    return min(cap, int(seconds // per_point))


def size(rates: Rates, steps: dict[str, int], allowed: float, *, floor: int, cap: int,
         square_cap: int = 0) -> Sizing:
    """The judged attacks' points (every attack of ``steps`` but Square: ``floor`` <= points <= ``cap``, as many as
    ``allowed`` seconds pay for after Square's SQUARE_FLOOR, rounded down to ``ladder(floor, cap)``) and Square's
    (what is left, at most ``square_cap``, rounded down to its ladder from SQUARE_FLOOR; 0 when Square is not in
    ``steps``)."""
    judged = [k for k in steps if k != "square"]
    floor = min(floor, cap)
    square = "square" in steps and square_cap > 0
    sq_floor = min(SQUARE_FLOOR, square_cap) if square else 0
    sq_cost = rates.seconds("square", steps["square"], sq_floor) if square else 0.0
    per_point = sum(rates.per_step[k] * steps[k] for k in judged)
    fits = _affordable(per_point, rates.rows, allowed - sq_cost, cap)
    points = on_ladder(max(floor, fits), floor, cap)
    limited = "points" if fits >= cap else ("budget" if fits >= floor else "floor")
    timings = limited == "budget"
    spent = sum(rates.seconds(k, steps[k], points) for k in judged)
    square_points = 0
    if square:
        per_query = rates.per_step["square"] * steps["square"]
        fits_sq = _affordable(per_query, rates.rows, allowed - spent, square_cap)
        square_points = on_ladder(max(sq_floor, fits_sq), sq_floor, square_cap)
        timings = timings or sq_floor <= fits_sq < square_cap
        spent += rates.seconds("square", steps["square"], square_points)
    return Sizing(points, square_points, limited, spent, "timings" if timings else "settings")


def attack_seconds(grid_points, attacks_config, n_test: int, grad_row: float, forward_row: float) -> tuple[float,
                                                                                                         str]:
    """The variant's attack time: the grid's counted passes (``grid_points``, its RobustnessPoints; the worst case
    is no attack of its own), or its planned ones when it has not run (None: every attack at every eps on the test
    split for its whole bound), at our model's seconds per row; and which of the two it is."""
    if grid_points is not None:
        runs = [p for p in grid_points if p.attack != WORST_CASE]
        grad, forward = sum(p.example_passes for p in runs), sum(p.forward_passes for p in runs)
        return grad * grad_row + forward * forward_row, "measured"
    grad = forward = 0.0
    for name in attacks_config.attacks:
        spec = ATTACKS[name]
        g, f = spec.cost(spec.make(**attacks_config.params(name)))
        grad, forward = grad + g * n_test * len(attacks_config.eps), forward + f * n_test * len(attacks_config.eps)
    return grad * grad_row + forward * forward_row, "planned"

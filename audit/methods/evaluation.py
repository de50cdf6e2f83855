"""Clean and robust evaluation of one variant: the one definition of robust accuracy used everywhere.

Robust accuracy = share of **all** evaluated test points classified correctly after the attack, attacking with the
true labels (RobustBench / AutoAttack definition); clean-misclassified points count as failures. The worst case
over several attacks is taken per example (mean_x min_attack), never as the minimum of the per-attack means.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import Ball, Norm, frozen_eval, to_memory_format
from attacks.inference import prefers_channels_last
from audit.config.attacks import AttackConfig
from audit.core import progress
from audit.core.metrics import WORST_CASE, RobustnessPoint
from audit.core.work import Unit
from audit.methods.gallery import ExamplePool, merge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidityStats:
    """Perturbation validity over every adversarial example produced (REFERENCE C10)."""

    max_norm_ratio: float  # max over examples of ||x_adv - x|| / eps
    out_of_range: int      # values outside the clip range
    non_finite: int        # NaN or Inf values


@dataclass(frozen=True)
class RobustnessEval:
    points: tuple[RobustnessPoint, ...]
    correct: dict  # (attack, eps) -> bool ndarray over test points
    validity: ValidityStats
    skipped: dict = field(default_factory=dict)  # attack -> why it could not run on this model
    examples: dict = field(default_factory=dict)  # eps -> adversarial inputs kept for the report (methods/gallery.py)


def perturbation_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm is Norm.LINF else flat.norm(dim=1)


@contextlib.contextmanager
def attack_mode(model: torch.nn.Module, device: torch.device, precision: str = "fp32",
                channels_last: bool = False):
    """bf16 autocast and channels-last memory format for the attack loop; the model is restored afterwards."""
    if channels_last:
        to_memory_format(model, torch.channels_last)
    ctx = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())
    try:
        with ctx:
            yield
    finally:
        if channels_last:
            to_memory_format(model, torch.contiguous_format)


def _prepare(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def clean_correct(model, x: torch.Tensor, y: torch.Tensor, device, batch_size: int) -> np.ndarray:
    with frozen_eval(model), torch.no_grad():
        return np.concatenate([(model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size])
                               .numpy() for i in range(0, x.shape[0], batch_size)])


def skipped_attacks(settings, num_classes: int, input_shape) -> dict[str, str]:
    """attack -> why it cannot run on this model and data (too few classes for DLR, no image for Square)."""
    out = {a: f"needs at least {ATTACKS[a].min_classes} classes; the model has {num_classes}"
           for a in settings.attacks if ATTACKS[a].min_classes > num_classes}
    if len(input_shape) != 3 or min(input_shape[1:], default=0) < 3:
        out.update({a: "perturbs square windows of images (N, C, H, W), at least 3x3" for a in settings.attacks
                    if ATTACKS[a].images_only})
    return out


@dataclass(frozen=True)
class GridRun:
    """One attack grid: ``settings`` (an AttackConfig), the clip range, the device, the run's seed, the model's
    classes (None: asked of the model) and the progress label."""

    settings: AttackConfig
    clip: tuple
    device: torch.device
    seed: int
    num_classes: int | None = None
    desc: str = "attack"


@dataclass(frozen=True)
class _Plan:
    """What every shard of one grid shares: the grid, its norm, the attacks that run, the chained ones and the eps."""

    run: GridRun
    norm: Norm
    attacks: tuple[str, ...]
    chain: tuple[str, ...]
    eps: tuple[float, ...]


def evaluate_robustness(model, x: torch.Tensor, y: torch.Tensor, run: GridRun, *, executor=None,
                        shards: int = 1) -> RobustnessEval:
    """Run every attack of ``run.settings`` (an AttackConfig) at every eps on (x, y) with the true labels; ``run``:
    the grid (settings, clip, device, seed, num_classes, desc).

    With ``settings.early_stop`` only clean-correct points are attacked (a clean error is never robust) and each
    attack stops on a point once it is misclassified: the robust accuracy is the same, the passes far fewer.
    Attacks of ``settings.chain`` run in order, each only on the points the earlier ones left robust (AutoAttack):
    the accuracy reported for one of them is that of the chain so far.

    The test set is cut into ``shards`` runs of whole batches, each a unit of ``executor`` (in this process when
    none is given). Every batch draws from a generator seeded by the run's seed, the attack, the eps and the
    batch's position in the test set, so the bits do not depend on the sharding nor on where a shard runs.
    """
    settings, device = run.settings, run.device
    if settings.attacks is None or settings.eps is None:  # set by the preset and by the whole config
        raise ValueError("evaluate_robustness: the settings' attacks and eps must be resolved, not None")
    norm = Norm(settings.norm or Norm.LINF)  # a standalone AttackConfig leaves it to the threat model: linf
    clip = run.clip
    if isinstance(clip[0], torch.Tensor):  # per-feature bounds
        clip = (clip[0].to(device), clip[1].to(device))
    num_classes = run.num_classes
    if num_classes is None:
        with frozen_eval(model), torch.no_grad():
            num_classes = int(model(x[:1].to(device)).shape[1])
    skipped = skipped_attacks(settings, num_classes, tuple(x.shape[1:]))
    attacks = tuple(a for a in settings.attacks if a not in skipped)
    chain = tuple(a for a in (settings.chain or ()) if a in attacks)
    plan = _Plan(dataclasses.replace(run, clip=clip), norm, attacks, chain, settings.eps)
    bounds = shard_bounds(x.shape[0], settings.batch_size, shards)
    if executor is None:
        parts = [grid_shard(model, x, y, plan, a, b) for a, b in bounds]
    else:
        m, xs, ys = executor.share(model), executor.share(x), executor.share(y)
        parts = executor.map([Unit(f"attack shard {i + 1}/{len(bounds)}", grid_shard, (m, xs, ys, plan, a, b))
                              for i, (a, b) in enumerate(bounds)])
    return _combine(parts, settings.eps, norm, attacks, skipped)


def _combine(parts, grid_eps, norm: Norm, attacks, skipped) -> RobustnessEval:
    """The shards' results as one evaluation, with the per-example worst case at every eps."""
    correct = {k: np.concatenate([p.correct[k] for p in parts]) for k in parts[0].correct}
    passes = {k: sum(p.passes[k] for p in parts) for k in parts[0].passes}
    forwards = {k: sum(p.forwards[k] for p in parts) for k in parts[0].forwards}
    points = []
    for eps in grid_eps:
        for attack in attacks:
            points.append(_point(attack, norm, eps, correct[(attack, eps)], passes[(attack, eps)],
                                 forwards[(attack, eps)]))
        worst = np.logical_and.reduce([correct[(a, eps)] for a in attacks])
        correct[(WORST_CASE, eps)] = worst
        points.append(_point(WORST_CASE, norm, eps, worst, sum(passes[(a, eps)] for a in attacks),
                             sum(forwards[(a, eps)] for a in attacks)))
    validity = ValidityStats(max(p.stats[0] for p in parts), sum(p.stats[1] for p in parts),
                             sum(p.stats[2] for p in parts))
    return RobustnessEval(points=tuple(points), correct=correct, validity=validity, skipped=skipped,
                          examples=merge(p.examples for p in parts))


def shard_bounds(n: int, batch_size: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` (at most one per batch) contiguous row ranges of whole batches covering ``n`` rows."""
    batches = max(1, -(-n // batch_size))
    k = max(1, min(shards, batches))
    cuts = [round(i * batches / k) * batch_size for i in range(k + 1)]
    return [(cuts[i], min(cuts[i + 1], n)) for i in range(k)]


@dataclass(frozen=True)
class GridShard:
    correct: dict    # (attack, eps) -> bool ndarray over the shard's rows
    passes: dict
    forwards: dict
    stats: tuple     # max norm ratio, values out of range, non-finite values
    examples: dict = field(default_factory=dict)  # eps -> adversarial inputs kept (audit/methods/gallery.py)


def batch_seed(seed: int, job: int, batch: int) -> int:
    """The generator seed of one batch of one (attack, eps) job: fixed by its identity, not by call order."""
    return (int(seed) * 1_000_003 + job * 100_003 + batch) % 2**63


def grid_shard(model, x, y, plan: _Plan, start: int, stop: int) -> GridShard:
    """Every (attack, eps) of the grid on test rows [start, stop) (a unit of work; ``start`` is a batch edge)."""
    settings, chain = plan.run.settings, plan.chain
    xs, ys = x[start:stop], y[start:stop]
    correct: dict[tuple[str, float], np.ndarray] = {}
    passes: dict[tuple[str, float], int] = {}
    forwards: dict[tuple[str, float], int] = {}
    stats = [0.0, 0, 0]
    clean_ok = clean_correct(model, xs, ys, plan.run.device, settings.batch_size)
    if not settings.channels_last and settings.precision == "fp32" and \
            prefers_channels_last(model, xs[:1].to(plan.run.device)):  # CPU convolutions: attacks/inference.py
        settings = dataclasses.replace(settings, channels_last=True)
        plan = dataclasses.replace(plan, run=dataclasses.replace(plan.run, settings=settings))
    pool = ExamplePool(clean_ok, start)
    jobs = [(a, e) for e in plan.eps for a in plan.attacks]
    with attack_mode(model, plan.run.device, settings.precision, settings.channels_last):
        for job, (attack, eps) in enumerate(progress.bar(jobs, desc=plan.run.desc, unit="attack")):
            attacked = clean_ok if attack not in chain or chain.index(attack) == 0 else \
                correct[(chain[chain.index(attack) - 1], eps)]
            only = attacked if settings.early_stop or attack in chain else None
            mask, total, fwd = _attack_rows(model, xs, ys, plan, (attack, eps, job, start), only, (stats, pool))
            correct[(attack, eps)] = mask & attacked
            passes[(attack, eps)], forwards[(attack, eps)] = total, fwd
    return GridShard(correct, passes, forwards, tuple(stats), pool.export())


def _attack_rows(model, x, y, plan: _Plan, job: tuple, only, keep: tuple):
    """Robust-correct mask of every row under one ``job`` (attack, eps, its index in the grid, the shard's first
    row) (rows outside ``only`` are not attacked and count as not robust), with the passes spent; ``keep``: the
    ``stats`` list that accumulates the perturbations' validity and the pool that keeps adversarial inputs."""
    attack, eps, index, offset = job
    stats, pool = keep
    settings, device, norm, clip = plan.run.settings, plan.run.device, plan.norm, plan.run.clip
    bs = settings.batch_size
    spec = ATTACKS[attack]
    rows_cap = {"max_rows": bs} if "max_rows" in spec.param_names else {}  # batched runs within the batch size
    ball, params = Ball(eps, norm, clip), spec.make(**settings.params(attack), **rows_cap)
    mask, total, fwd = np.zeros(x.shape[0], dtype=bool), 0, 0
    for i in range(0, x.shape[0], bs):
        rows = torch.arange(i, min(i + bs, x.shape[0]))
        if only is not None:
            rows = rows[torch.from_numpy(only[i:i + bs])]
        if rows.numel() == 0:
            continue
        gen = torch.Generator(device=device).manual_seed(batch_seed(plan.run.seed, index, (offset + i) // bs))
        xb = _prepare(x[rows].to(device), settings.channels_last)
        yb = y[rows].to(device)
        out = spec.function(model, xb, yb, ball, params, generator=gen)
        total, fwd = total + out.example_passes, fwd + out.forward_passes + rows.numel()
        x_adv = out.x_adv.float()
        with frozen_eval(model), torch.no_grad():
            logits = model(x_adv)
            mask[rows.numpy()] = (logits.argmax(1) == yb).cpu().numpy()
        delta = (x_adv - xb.float())
        norms = perturbation_norm(delta, norm)
        pool.add((attack, eps), rows, yb, logits, delta, norms)
        stats[0] = max(stats[0], float(norms.max()) / eps)
        stats[1] += int(((x_adv < clip[0]) | (x_adv > clip[1])).sum())
        stats[2] += int((~torch.isfinite(x_adv)).sum())
    return mask, total, fwd


def _point(attack: str, norm: Norm, eps: float, mask: np.ndarray, passes: int, forwards: int) -> RobustnessPoint:
    return RobustnessPoint.of(attack, norm.value, eps, mask, passes, forwards)

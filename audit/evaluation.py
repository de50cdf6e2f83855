"""Clean and robust evaluation of one variant: the one definition of robust accuracy used everywhere.

Robust accuracy = share of **all** evaluated test points classified correctly after the attack, attacking with the
true labels (RobustBench / AutoAttack definition); clean-misclassified points count as failures. The worst case
over several attacks is taken per example (mean_x min_attack), never as the minimum of the per-attack means.
"""
from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from attacks import ATTACKS
from attacks.base import Norm, frozen_eval
from audit.stats import wilson_interval

log = logging.getLogger(__name__)
WORST_CASE = "worst_case"


@dataclass(frozen=True)
class Accuracy:
    """A proportion with its 95% Wilson interval: ``correct`` of ``n`` points."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    correct: int

    @classmethod
    def of(cls, mask: np.ndarray) -> "Accuracy":
        n, k = int(mask.size), int(mask.sum())
        lo, hi = wilson_interval(k, n)
        return cls(value=k / n if n else 0.0, ci_low=lo, ci_high=hi, n=n, correct=k)


@dataclass(frozen=True)
class RobustnessPoint:
    """Robust accuracy of one attack at one eps. ``attack`` is "worst_case" for the per-example worst case."""

    attack: str
    norm: str
    eps: float
    robust_accuracy: float
    ci_low: float
    ci_high: float
    n: int
    example_passes: int
    correct_bits: str = ""  # base64 of numpy.packbits(per-test-point robust correctness), test order


def pack_bits(mask: np.ndarray) -> str:
    """Per-example correctness, compactly: base64 of numpy.packbits (decode with ``unpack_bits``)."""
    return base64.b64encode(np.packbits(mask.astype(np.uint8))).decode("ascii")


def unpack_bits(bits: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(bits), dtype=np.uint8))[:n].astype(bool)


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


def perturbation_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm is Norm.LINF else flat.norm(dim=1)


def evaluate_robustness(model, x: torch.Tensor, y: torch.Tensor, *, attacks: tuple[str, ...], norm: Norm,
                        eps_grid: tuple[float, ...], clip: tuple[float, float], device: torch.device,
                        batch_size: int, pgd_steps: int, pgd_restarts: int, seed: int,
                        desc: str = "attack") -> RobustnessEval:
    """Run every attack at every eps on (x, y) with the true labels; return per-point results and validity."""
    norm = Norm(norm)
    if isinstance(clip[0], torch.Tensor):  # per-feature bounds
        clip = (clip[0].to(device), clip[1].to(device))
    correct: dict = {}
    passes: dict = {}
    max_ratio, out_of_range, non_finite = 0.0, 0, 0
    jobs = [(a, e) for e in eps_grid for a in attacks]
    with frozen_eval(model), torch.no_grad():  # clean correctness once: a clean error is never robust
        clean_ok = [(model(x[i:i + batch_size].to(device)).argmax(1) == y[i:i + batch_size].to(device))
                    for i in range(0, x.shape[0], batch_size)]
    for attack, eps in tqdm(jobs, desc=desc, unit="attack", disable=None, leave=False):
        gen = torch.Generator().manual_seed(seed)
        masks, total = [], 0
        for b, i in enumerate(range(0, x.shape[0], batch_size)):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            out = ATTACKS[attack](model, xb, yb, eps=eps, norm=norm, clip=clip, steps=pgd_steps,
                                  restarts=pgd_restarts, generator=gen)
            total += out.example_passes
            with frozen_eval(model), torch.no_grad():
                masks.append(((model(out.x_adv).argmax(1) == yb) & clean_ok[b]).cpu().numpy())
            delta = (out.x_adv - xb).float()
            max_ratio = max(max_ratio, float(perturbation_norm(delta, norm).max()) / eps)
            out_of_range += int(((out.x_adv < clip[0]) | (out.x_adv > clip[1])).sum())
            non_finite += int((~torch.isfinite(out.x_adv)).sum())
        correct[(attack, eps)] = np.concatenate(masks)
        passes[(attack, eps)] = total
    points = []
    for eps in eps_grid:
        for attack in attacks:
            points.append(_point(attack, norm, eps, correct[(attack, eps)], passes[(attack, eps)]))
        worst = np.logical_and.reduce([correct[(a, eps)] for a in attacks])
        correct[(WORST_CASE, eps)] = worst
        points.append(_point(WORST_CASE, norm, eps, worst, sum(passes[(a, eps)] for a in attacks)))
    return RobustnessEval(points=tuple(points), correct=correct,
                          validity=ValidityStats(max_ratio, out_of_range, non_finite))


def _point(attack: str, norm: Norm, eps: float, mask: np.ndarray, passes: int) -> RobustnessPoint:
    acc = Accuracy.of(mask)
    return RobustnessPoint(attack=attack, norm=norm.value, eps=float(eps), robust_accuracy=acc.value,
                           ci_low=acc.ci_low, ci_high=acc.ci_high, n=acc.n, example_passes=int(passes),
                           correct_bits=pack_bits(mask))

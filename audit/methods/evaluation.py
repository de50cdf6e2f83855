"""Clean and robust evaluation of one variant: the one definition of robust accuracy used everywhere.

Robust accuracy = share of **all** evaluated test points classified correctly after the attack, attacking with the
true labels (RobustBench / AutoAttack definition); clean-misclassified points count as failures. The worst case
over several attacks is taken per example (mean_x min_attack), never as the minimum of the per-attack means.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from attacks import ATTACKS, MIN_CLASSES
from attacks.base import Norm, frozen_eval
from audit.core.metrics import WORST_CASE, RobustnessPoint

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


def perturbation_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm is Norm.LINF else flat.norm(dim=1)


@contextlib.contextmanager
def attack_mode(model: torch.nn.Module, device: torch.device, precision: str = "fp32",
                channels_last: bool = False):
    """bf16 autocast and channels-last memory format for the attack loop; the model is restored afterwards."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
    ctx = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())
    try:
        with ctx:
            yield
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)


def _prepare(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def clean_correct(model, x: torch.Tensor, y: torch.Tensor, device, batch_size: int) -> np.ndarray:
    with frozen_eval(model), torch.no_grad():
        return np.concatenate([(model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size])
                               .numpy() for i in range(0, x.shape[0], batch_size)])


def evaluate_robustness(model, x: torch.Tensor, y: torch.Tensor, *, settings, clip, device: torch.device,
                        seed: int, num_classes: int | None = None, desc: str = "attack") -> RobustnessEval:
    """Run every attack of ``settings`` (an AttackConfig) at every eps on (x, y) with the true labels.

    With ``settings.early_stop`` only clean-correct points are attacked (a clean error is never robust) and each
    attack stops on a point once it is misclassified: the robust accuracy is the same, the passes far fewer.
    """
    norm = Norm(settings.norm)
    if isinstance(clip[0], torch.Tensor):  # per-feature bounds
        clip = (clip[0].to(device), clip[1].to(device))
    bs = settings.batch_size
    if num_classes is None:
        with frozen_eval(model), torch.no_grad():
            num_classes = int(model(x[:1].to(device)).shape[1])
    skipped = {a: f"needs at least {MIN_CLASSES[a]} classes; the model has {num_classes}"
               for a in settings.attacks if MIN_CLASSES.get(a, 0) > num_classes}
    attacks = tuple(a for a in settings.attacks if a not in skipped)
    correct: dict = {}
    passes: dict = {}
    max_ratio, out_of_range, non_finite = 0.0, 0, 0
    clean_ok = clean_correct(model, x, y, device, bs)
    jobs = [(a, e) for e in settings.eps for a in attacks]
    with attack_mode(model, device, settings.precision, settings.channels_last):
        for attack, eps in tqdm(jobs, desc=desc, unit="attack", disable=None, leave=False):
            gen = torch.Generator().manual_seed(seed)
            params = settings.params(attack)
            mask, total = np.zeros(x.shape[0], dtype=bool), 0
            for i in range(0, x.shape[0], bs):
                ok = torch.from_numpy(clean_ok[i:i + bs])
                rows = torch.arange(i, min(i + bs, x.shape[0]))
                if settings.early_stop:
                    rows = rows[ok]
                if rows.numel() == 0:
                    continue
                xb = _prepare(x[rows].to(device), settings.channels_last)
                yb = y[rows].to(device)
                out = ATTACKS[attack](model, xb, yb, eps=eps, norm=norm, clip=clip, generator=gen, **params)
                total += out.example_passes
                x_adv = out.x_adv.float()
                with frozen_eval(model), torch.no_grad():
                    still = (model(x_adv).argmax(1) == yb).cpu().numpy()
                mask[rows.numpy()] = still & clean_ok[rows.numpy()]
                delta = (x_adv - xb.float())
                max_ratio = max(max_ratio, float(perturbation_norm(delta, norm).max()) / eps)
                out_of_range += int(((x_adv < clip[0]) | (x_adv > clip[1])).sum())
                non_finite += int((~torch.isfinite(x_adv)).sum())
            correct[(attack, eps)] = mask
            passes[(attack, eps)] = total
    points = []
    for eps in settings.eps:
        for attack in attacks:
            points.append(_point(attack, norm, eps, correct[(attack, eps)], passes[(attack, eps)]))
        worst = np.logical_and.reduce([correct[(a, eps)] for a in attacks])
        correct[(WORST_CASE, eps)] = worst
        points.append(_point(WORST_CASE, norm, eps, worst, sum(passes[(a, eps)] for a in attacks)))
    return RobustnessEval(points=tuple(points), correct=correct,
                          validity=ValidityStats(max_ratio, out_of_range, non_finite), skipped=skipped)


def _point(attack: str, norm: Norm, eps: float, mask: np.ndarray, passes: int) -> RobustnessPoint:
    return RobustnessPoint.of(attack, norm.value, eps, mask, passes)

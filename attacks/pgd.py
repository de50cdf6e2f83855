"""Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu, 2018, "Towards Deep Learning Models
Resistant to Adversarial Attacks", arXiv:1706.06083).

From a random point of the eps-ball (``random_init``), repeat ``steps`` times:
    x <- clip(x0 + Proj_eps(x + alpha * dir(grad_x L(f(x), y)) - x0))
with dir = sign for Linf and grad/||grad||_2 for L2. With ``restarts`` > 1, examples not yet broken are attacked
again from a new random start; per example the first adversarial iterate found is kept (per-example worst case),
unlike ART, which returns the last iterate.

``early_stop=True`` stops updating an example as soon as it is misclassified. It stays adversarial because it is
no longer moved, so robust accuracy is identical by construction while far fewer passes are spent.

Shapes: x (N, ...) in the clip range, y (N,) int64 true labels (target labels when ``targeted``).
Cost: at most ``steps * restarts`` forward+backward per example; the exact count is returned.
"""
from __future__ import annotations

import torch

from attacks.base import (AttackOutput, Norm, ascent_direction, clip_to, frozen_eval, input_gradient, project,
                          random_start)


def default_step_size(eps: float, steps: int) -> float:
    """2.5 * eps / steps (Madry et al.): the iterate can cross the ball and still reach its boundary."""
    return 2.5 * eps / max(steps, 1)


def _fooled(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    pred = logits.argmax(1)
    return pred.eq(y) if targeted else pred.ne(y)


def _one_run(model, xs, ys, eps, norm, clip, steps, alpha, random_init, targeted, early_stop, generator):
    """One PGD run from one start; returns (x_adv, fooled mask, example passes)."""
    xa = clip_to(xs + random_start(xs, eps, norm, generator), clip) if random_init else xs.clone()
    active = torch.arange(xs.shape[0], device=xs.device)
    passes = 0
    for _ in range(steps):
        grad, logits = input_gradient(model, xa[active], ys[active], targeted)
        passes += active.numel()
        if early_stop:
            keep = ~_fooled(logits, ys[active], targeted)
            active, grad = active[keep], grad[keep]
            if active.numel() == 0:
                break
        x0 = xs[active]
        moved = xa[active] + alpha * ascent_direction(grad, norm)
        xa[active] = clip_to(x0 + project(moved - x0, eps, norm), clip).detach()
    with torch.no_grad():
        fooled = _fooled(model(xa), ys, targeted)
    return xa, fooled, passes


def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: Norm = Norm.LINF,
        clip: tuple = (0.0, 1.0), steps: int = 20, step_size: float | None = None, restarts: int = 1,
        random_init: bool = True, targeted: bool = False, early_stop: bool = False,
        generator: torch.Generator | None = None, **_unused) -> AttackOutput:
    norm = Norm(norm)
    alpha = default_step_size(eps, steps) if step_size is None else step_size
    x0 = x.detach()
    best = x0.clone()
    pending = torch.arange(x0.shape[0], device=x0.device)
    passes = 0
    with frozen_eval(model):
        for _ in range(max(restarts, 1)):
            xa, fooled, n = _one_run(model, x0[pending], y[pending], eps, norm, clip, steps, alpha,
                                     random_init, targeted, early_stop, generator)
            passes += n
            best[pending] = xa  # last iterate for the still-unbroken ones, the adversarial one for the rest
            pending = pending[~fooled]
            if pending.numel() == 0:
                break
    return AttackOutput(x_adv=best.detach(), example_passes=passes)

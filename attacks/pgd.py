"""Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu, 2018, "Towards Deep Learning Models
Resistant to Adversarial Attacks", arXiv:1706.06083).

From a random point of the eps-ball (``random_init``), repeat ``steps`` times:
    x <- clip(x0 + Proj_eps(x + alpha * dir(grad_x L(f(x), y)) - x0))
with dir = sign for Linf and grad/||grad||_2 for L2.

Evaluation semantics (``keep_adversarial=True``, the default): per example the **first** misclassified iterate is
kept, over all steps and restarts (ART returns the last iterate of a restart instead), and examples not yet broken
are attacked again from a new random start. ``early_stop=True`` additionally stops computing gradients for an
example once it is misclassified; since the kept point is the same, robust accuracy is identical to the
fixed-step run by construction (same random draws), for far fewer passes. Training passes
``keep_adversarial=False`` to get the last (highest-loss) iterate.

Targeted: ``target`` (N,) int64 makes each step descend the cross-entropy to the target class; success for robust
accuracy is still any misclassification of the true label ``y``. (The legacy ``targeted=True`` treats ``y`` as the
target and success as hitting it.)

Shapes: x (N, ...) in the clip range, y (N,) int64 true labels.
Cost: at most ``steps * restarts`` forward+backward per example; the exact count is returned.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attacks.base import (
    AttackOutput,
    Norm,
    ascent_direction,
    attack_with_restarts,
    clip_to,
    compact_every,
    project,
    random_start,
)


def default_step_size(eps: float, steps: int) -> float:
    """2.5 * eps / steps (Madry et al.): the iterate can cross the ball and still reach its boundary."""
    return 2.5 * eps / max(steps, 1)


def _grad(model, x, y, target, legacy_targeted):
    """Gradient of the attack objective (to ascend) and the logits at x."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    if target is not None:
        loss = -F.cross_entropy(logits, target, reduction="sum")
    else:
        loss = F.cross_entropy(logits, y, reduction="sum")
        if legacy_targeted:
            loss = -loss
    (g,) = torch.autograd.grad(loss, x)
    return g, logits.detach()


def _success(logits, y, legacy_targeted):
    pred = logits.argmax(1)
    return pred.eq(y) if legacy_targeted else pred.ne(y)


def _one_run(model, xs, ys, ts, eps, norm, clip, steps, alpha, random_init, legacy, early_stop, keep_adv,
             generator, need_last=True):
    """One run from one start; returns (x kept, success mask, example passes).

    Fixed steps run on the whole batch with masked updates (no host synchronisation inside the loop); early stop
    drops the broken examples from the batch every ``compact_every(device)`` steps (its only synchronisation), with
    masked updates in between, so the kept point of every example is the fixed-step run's.
    """
    xa = clip_to(xs + random_start(xs, eps, norm, generator), clip) if random_init else xs.clone()
    found = xa.clone()
    done = torch.zeros(xs.shape[0], dtype=torch.bool, device=xs.device)
    shape1 = (-1,) + (1,) * (xs.dim() - 1)
    if not early_stop:
        for _ in range(steps):
            grad, logits = _grad(model, xa, ys, ts, legacy)
            if keep_adv:
                hit = _success(logits, ys, legacy) & ~done
                found = torch.where(hit.view(shape1), xa, found)
                done = done | hit
            xa = clip_to(xs + project(xa + alpha * ascent_direction(grad, norm) - xs, eps, norm), clip).detach()
        passes = steps * xs.shape[0]
        if not keep_adv and not need_last:  # adversarial training: the last iterate, no extra forward pass
            return xa, None, passes
        with torch.no_grad():
            last = _success(model(xa), ys, legacy)
        if not keep_adv:
            return xa, last, passes
        return torch.where(done.view(shape1), found, xa), done | last, passes
    active, every = torch.arange(xs.shape[0], device=xs.device), compact_every(xs.device)
    passes = 0
    for i in range(steps):
        if i and i % every == 0:  # the loop's only host synchronisation
            active = active[~done[active]]
            if active.numel() == 0:
                break
        grad, logits = _grad(model, xa[active], ys[active], None if ts is None else ts[active], legacy)
        passes += active.numel()
        xs_a, xa_a = xs[active], xa[active]
        hit = _success(logits, ys[active], legacy) & ~done[active]
        found[active] = torch.where(hit.view(shape1), xa_a, found[active])
        done[active] = done[active] | hit
        xa[active] = clip_to(xs_a + project(xa_a + alpha * ascent_direction(grad, norm) - xs_a, eps, norm),
                             clip).detach()
    if active.numel():
        with torch.no_grad():  # the final iterate (no gradient needed: a forward only)
            last_ok = _success(model(xa[active]), ys[active], legacy) & ~done[active]
        found[active] = torch.where(last_ok.view(shape1), xa[active], found[active])
        done[active] = done[active] | last_ok
    found = torch.where(done.view(shape1), found, xa)
    return found, done, passes


def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: Norm = Norm.LINF,
        clip: tuple = (0.0, 1.0), steps: int = 20, step_size: float | None = None, restarts: int = 1,
        random_init: bool = True, targeted: bool = False, target: torch.Tensor | None = None,
        early_stop: bool = False, keep_adversarial: bool = True, generator: torch.Generator | None = None,
        **_unused) -> AttackOutput:
    norm = Norm(norm)
    alpha = default_step_size(eps, steps) if step_size is None else step_size
    return attack_with_restarts(
        model, x, y, target, restarts,
        lambda xs, ys, ts: _one_run(model, xs, ys, ts, eps, norm, clip, steps, alpha, random_init, targeted,
                                    early_stop, keep_adversarial, generator, need_last=restarts > 1))

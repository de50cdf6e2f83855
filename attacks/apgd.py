"""Auto-PGD (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", arXiv:2003.01690, Algorithm 1), written natively in torch for Linf and L2.

Step size starts at 2 * eps and is halved at checkpoints w_j (p_0 = 0, p_1 = 0.22,
p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) when, since the last checkpoint, fewer than rho = 0.75 of the
steps raised the loss, or when the step was not halved last time and the best loss has not improved; the iterate
then restarts from the best point. Updates use momentum 0.75:
    z = P(x_k + eta * dir(grad)),  x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1})).
The checkpoints are kept in the simplified integer form of the reference implementation (interval 0.22 * steps,
shrinking by 0.03 * steps to at least 0.06 * steps).

Per example the first misclassified iterate is kept (over steps and restarts); ``early_stop`` stops spending
passes on an example once it is broken (same result, fewer passes): broken examples are dropped from the batch
every ``compact_every(device)`` steps, the loop's only host synchronisation; all other updates are masked, so no step
waits for the device. Losses: "ce" (APGD-CE) and "dlr" (APGD-DLR,
needs >= 3 classes). ``target`` gives targeted runs (APGD-T uses the targeted DLR loss).

Shapes: x (N, ...) in the clip range, y (N,) int64 true labels. Cost: at most (steps + 1) * restarts
forward+backward per example; the exact count is returned.
"""
from __future__ import annotations

import torch

from attacks.base import (
    AttackOutput,
    Norm,
    _flat_norm,
    ascent_direction,
    attack_with_restarts,
    clip_to,
    compact_every,
    draw,
    project,
)
from attacks.losses import LOSSES

RHO = 0.75
MOMENTUM = 0.75


def _loss_grad(model, x, y, target, loss_fn):
    x = x.detach().requires_grad_(True)
    logits = model(x)
    loss = loss_fn(logits, y, target)
    (g,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), g, logits.detach()


def _boundary_start(x, eps, norm, generator):
    """A random point on (or, for Linf, at a corner-scaled point in) the eps-ball, as in the paper's code."""
    if norm is Norm.LINF:
        t = 2 * draw("rand", x.shape, generator, x) - 1
        return eps * t / t.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
    t = draw("randn", x.shape, generator, x)
    return eps * t / _flat_norm(t).clamp_min(1e-12)


def _single_run(model, x, y, target, *, eps, norm, clip, steps, loss_fn, early_stop, generator):
    n = x.shape[0]
    shape1 = (-1, *([1] * (x.dim() - 1)))

    def proj(p, idx):
        return clip_to(x[idx] + project(p - x[idx], eps, norm), clip)

    all_idx = torch.arange(n, device=x.device)
    x_adv = proj(x + _boundary_start(x, eps, norm, generator), all_idx)
    tgt = None if target is None else target
    loss, grad, logits = _loss_grad(model, x_adv, y, tgt, loss_fn)
    passes = n
    done = logits.argmax(1).ne(y)
    found = x_adv.clone()
    x_best, grad_best, loss_best = x_adv.clone(), grad.clone(), loss.clone()
    x_prev = x_adv.clone()
    loss_last = loss.clone()
    step = torch.full((n,), 2.0 * eps, device=x.device, dtype=x.dtype)
    increases = torch.zeros(n, device=x.device)
    loss_best_at_check = loss_best.clone()
    reduced_at_check = torch.ones(n, dtype=torch.bool, device=x.device)
    interval = max(int(0.22 * steps), 1)
    min_interval, decrease = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    since_check = 0
    active, every = all_idx, compact_every(x.device)
    for i in range(steps):
        if early_stop and i % every == 0:  # the only host synchronisation of the loop
            active = active[~done[active]]
            if active.numel() == 0:
                break
        a = MOMENTUM if i > 0 else 1.0
        xa, xp = x_adv[active], x_prev[active]
        z = proj(xa + step[active].view(shape1) * ascent_direction(grad[active], norm), active)
        new = proj(xa + a * (z - xa) + (1 - a) * (xa - xp), active)
        x_prev[active], x_adv[active] = xa, new
        l_new, g_new, lg = _loss_grad(model, new, y[active], None if tgt is None else tgt[active], loss_fn)
        passes += active.numel()
        grad[active] = g_new
        hit = lg.argmax(1).ne(y[active]) & ~done[active]
        found[active] = torch.where(hit.view(shape1), new, found[active])
        done[active] = done[active] | hit
        increases[active] += (l_new > loss_last[active]).float()
        loss_last[active] = l_new
        better = l_new > loss_best[active]
        x_best[active] = torch.where(better.view(shape1), new, x_best[active])
        grad_best[active] = torch.where(better.view(shape1), g_new, grad_best[active])
        loss_best[active] = torch.where(better, l_new, loss_best[active])
        since_check += 1
        if since_check == interval:
            oscillating = increases <= interval * RHO
            stalled = ~reduced_at_check & (loss_best_at_check >= loss_best)
            reduce = oscillating | stalled
            reduced_at_check = reduce
            loss_best_at_check = loss_best.clone()
            step = torch.where(reduce, step / 2.0, step)
            x_adv = torch.where(reduce.view(shape1), x_best, x_adv)
            grad = torch.where(reduce.view(shape1), grad_best, grad)
            increases.zero_()
            since_check = 0
            interval = max(interval - decrease, min_interval)
    found = torch.where(done.view(shape1), found, x_best)
    return found, done, passes


def apgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: Norm = Norm.LINF,
         clip: tuple = (0.0, 1.0), steps: int = 100, restarts: int = 1, loss: str = "ce",
         target: torch.Tensor | None = None, early_stop: bool = False,
         generator: torch.Generator | None = None, **_unused) -> AttackOutput:
    norm = Norm(norm)
    loss_fn = LOSSES[loss]
    return attack_with_restarts(
        model, x, y, target, restarts,
        lambda xs, ys, ts: _single_run(model, xs, ys, ts, eps=eps, norm=norm, clip=clip, steps=steps,
                                       loss_fn=loss_fn, early_stop=early_stop, generator=generator))


def apgd_ce(model, x, y, **kw) -> AttackOutput:
    return apgd(model, x, y, loss="ce", **kw)


def apgd_dlr(model, x, y, **kw) -> AttackOutput:
    return apgd(model, x, y, loss="dlr", **kw)

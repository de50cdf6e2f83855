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
waits for the device. Losses: "ce" (APGD-CE) and "dlr" (APGD-DLR, needs >= 3 classes). ``target`` gives targeted
runs; APGD-T runs the targeted DLR loss towards each of the ``n_targets`` classes ranked highest after y, in turn
(attacks/targeted.py).

Parameters (``APGDParams``): steps, restarts, early_stop; APGD-T adds n_targets.
Shapes: x (N, ...) in the clip range, y (N,) int64 true labels, target (N,) int64. Cost: at most
(steps + 1) * restarts forward+backward per example (per target for APGD-T); the exact count is returned.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import (
    AttackOutput,
    Ball,
    Norm,
    _flat_norm,
    ascent_direction,
    attack_with_restarts,
    clip_to,
    compact_every,
    draw,
    frozen_eval,
    loss_gradient,
    project,
)
from attacks.losses import LOSSES, MIN_CLASSES
from attacks.spec import AttackSpec, MultiTarget, register, setting
from attacks.targeted import Runs, ranked_runs

RHO = 0.75
MOMENTUM = 0.75


@dataclass(frozen=True)
class APGDParams:
    """steps, restarts; early_stop: stop attacking an example once broken (same result, fewer passes)."""

    steps: int = setting(100, "apgd_steps")
    restarts: int = setting(1, "apgd_restarts")
    early_stop: bool = setting(False, "early_stop")

    def describe(self, label: str) -> str:
        return f"{label}, {self.steps} steps x {self.restarts} restart(s), step from 2 eps, halved adaptively"

    def cost(self) -> tuple[float, float]:
        return float(self.steps * self.restarts), float(self.steps * self.restarts)


def _boundary_start(x, eps, norm, generator, raw=None):
    """A random point on (or, for Linf, at a corner-scaled point in) the eps-ball, as in the paper's code; ``raw``:
    the draw itself (uniform for Linf, normal for L2) when the caller made it (attacks/targeted.py)."""
    if norm is Norm.LINF:
        t = 2 * (draw("rand", x.shape, generator, x) if raw is None else raw) - 1
        return eps * t / t.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
    t = draw("randn", x.shape, generator, x) if raw is None else raw
    return eps * t / _flat_norm(t).clamp_min(1e-12)


class _Checkpoints:
    """The step-size checkpoints w_j in the reference code's integer form: every ``interval`` steps, the interval
    shrinking by 0.03 * steps to at least 0.06 * steps."""

    def __init__(self, steps: int):
        self.interval = max(int(0.22 * steps), 1)
        self.min_interval, self.decrease = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
        self.since = 0

    def tick(self) -> int:
        """Count one step; at a checkpoint the interval that ended there, else 0."""
        self.since += 1
        if self.since < self.interval:
            return 0
        ended, self.since = self.interval, 0
        self.interval = max(self.interval - self.decrease, self.min_interval)
        return ended


@dataclass
class _Iterates:
    """One run's per-example state: the iterate and the one before it, its gradient, the step size, the best
    point (highest loss) with its gradient and loss, the first misclassified point, and the checkpoint tallies."""

    x_adv: torch.Tensor
    x_prev: torch.Tensor
    grad: torch.Tensor
    loss_last: torch.Tensor
    step: torch.Tensor
    found: torch.Tensor
    done: torch.Tensor
    x_best: torch.Tensor
    grad_best: torch.Tensor
    loss_best: torch.Tensor
    increases: torch.Tensor
    loss_best_at_check: torch.Tensor
    reduced_at_check: torch.Tensor

    @classmethod
    def start(cls, x_adv, loss, grad, done, eps):
        n, dev = x_adv.shape[0], x_adv.device
        return cls(x_adv=x_adv, x_prev=x_adv.clone(), grad=grad, loss_last=loss.clone(),
                   step=torch.full((n,), 2.0 * eps, device=dev, dtype=x_adv.dtype), found=x_adv.clone(), done=done,
                   x_best=x_adv.clone(), grad_best=grad.clone(), loss_best=loss.clone(),
                   increases=torch.zeros(n, device=dev), loss_best_at_check=loss.clone(),
                   reduced_at_check=torch.ones(n, dtype=torch.bool, device=dev))

    def record(self, rows, new, loss, grad, hit, shape1):
        """Write one step's results for ``rows``: the iterate, first hits, loss increases and the best point."""
        self.x_adv[rows] = new
        self.grad[rows] = grad
        self.found[rows] = torch.where(hit.view(shape1), new, self.found[rows])
        self.done[rows] = self.done[rows] | hit
        self.increases[rows] += (loss > self.loss_last[rows]).float()
        self.loss_last[rows] = loss
        better = loss > self.loss_best[rows]
        self.x_best[rows] = torch.where(better.view(shape1), new, self.x_best[rows])
        self.grad_best[rows] = torch.where(better.view(shape1), grad, self.grad_best[rows])
        self.loss_best[rows] = torch.where(better, loss, self.loss_best[rows])

    def checkpoint(self, interval: int, shape1):
        """Halve the step where the loss oscillated or stalled since the last checkpoint; restart from the best."""
        oscillating = self.increases <= interval * RHO
        stalled = ~self.reduced_at_check & (self.loss_best_at_check >= self.loss_best)
        reduce = oscillating | stalled
        self.reduced_at_check = reduce
        self.loss_best_at_check = self.loss_best.clone()
        self.step = torch.where(reduce, self.step / 2.0, self.step)
        self.x_adv = torch.where(reduce.view(shape1), self.x_best, self.x_adv)
        self.grad = torch.where(reduce.view(shape1), self.grad_best, self.grad)
        self.increases.zero_()


def _single_run(model, x, y, target, ball: Ball, p: APGDParams, loss_fn, source):
    """One run from one boundary start: (x kept, broken mask, example passes). ``source``: the generator of the
    start, or the ``Runs`` the rows are (attacks/targeted.py): their own start draws, and early stop also drops a row
    once a run of lower rank broke its point."""
    runs = source if isinstance(source, Runs) else None
    generator = None if runs is not None else source
    eps, norm, n = ball.eps, ball.norm, x.shape[0]
    shape1 = (-1, *([1] * (x.dim() - 1)))

    def proj(z, idx):
        return clip_to(x[idx] + project(z - x[idx], eps, norm), ball.clip)

    all_idx = torch.arange(n, device=x.device)
    x_adv = proj(x + _boundary_start(x, eps, norm, generator, None if runs is None else runs.raw), all_idx)
    loss, grad, logits = loss_gradient(model, x_adv, y, target, loss_fn)
    s = _Iterates.start(x_adv, loss, grad, logits.argmax(1).ne(y), eps)
    passes, checks = n, _Checkpoints(p.steps)
    active, every = all_idx, compact_every(x.device)
    for i in range(p.steps):
        if p.early_stop and i % every == 0:  # the only host synchronisation of the loop
            stop = s.done if runs is None else s.done | runs.superseded(s.done)
            active = active[~stop[active]]
            if active.numel() == 0:
                break
        a = MOMENTUM if i > 0 else 1.0
        xa, xp = s.x_adv[active], s.x_prev[active]
        z = proj(xa + s.step[active].view(shape1) * ascent_direction(s.grad[active], norm), active)
        new = proj(xa + a * (z - xa) + (1 - a) * (xa - xp), active)
        s.x_prev[active] = xa
        l_new, g_new, lg = loss_gradient(model, new, y[active], None if target is None else target[active], loss_fn)
        passes += active.numel()
        s.record(active, new, l_new, g_new, lg.argmax(1).ne(y[active]) & ~s.done[active], shape1)
        ended = checks.tick()
        if ended:
            s.checkpoint(ended, shape1)
    return torch.where(s.done.view(shape1), s.found, s.x_best), s.done, passes


def apgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball, params: APGDParams = APGDParams(),
         *, loss: str = "ce", target: torch.Tensor | None = None,
         generator: torch.Generator | None = None) -> AttackOutput:
    """APGD on ``loss`` ("ce" or "dlr", attacks/losses.py), towards ``target`` when given."""
    loss_fn = LOSSES[loss]
    return attack_with_restarts(
        model, x, y, target, params.restarts,
        lambda xs, ys, ts: _single_run(model, xs, ys, ts, ball, params, loss_fn, generator))


def apgd_cross_entropy(model, x, y, ball: Ball, params: APGDParams = APGDParams(), *, target=None,
                       generator=None) -> AttackOutput:
    return apgd(model, x, y, ball, params, loss="ce", target=target, generator=generator)


def apgd_dlr_loss(model, x, y, ball: Ball, params: APGDParams = APGDParams(), *, target=None,
                  generator=None) -> AttackOutput:
    return apgd(model, x, y, ball, params, loss="dlr", target=target, generator=generator)


apgd_ce = register(AttackSpec("apgd_ce", "APGD-CE", apgd_cross_entropy, APGDParams, gradient_ascent=True))
apgd_dlr = register(AttackSpec("apgd_dlr", "APGD-DLR", apgd_dlr_loss, APGDParams,
                               min_classes=MIN_CLASSES["dlr"], gradient_ascent=True))  # DLR divides by z_pi1 - z_pi3


@dataclass(frozen=True)
class APGDTParams(MultiTarget, APGDParams):
    """APGD's, and n_targets: the classes ranked highest after y, attacked in turn (the runs of every target and
    restart batched together, attacks/targeted.py)."""

    n_targets: int = setting(9, "n_targets")
    max_rows: int = 0  # the largest batch of runs (0: grown to suit the device; the audit's grid passes its batch size)



def apgd_multi_target(model, x, y, ball: Ball, params: APGDTParams = APGDTParams(), *,
                      generator=None) -> AttackOutput:
    """APGD-T: the targeted DLR loss towards each of the ``n_targets`` ranked classes, x ``restarts`` runs each,
    with the result of running them in turn (with fewer than 4 classes, which targeted DLR needs, the targeted
    cross-entropy)."""
    with frozen_eval(model), torch.no_grad():
        classes = model(x[:1]).shape[1]
    loss_fn = LOSSES["dlr" if classes >= 4 else "ce"]

    def run(xs, ys, runs: Runs):
        with frozen_eval(model):
            return _single_run(model, xs, ys, runs.target, ball, params, loss_fn, runs)
    return ranked_runs(run, model, x, y, (params.n_targets, params.restarts, ball.norm, params.max_rows), generator)


apgd_t = register(AttackSpec("apgd_t", "APGD-T", apgd_multi_target, APGDTParams, gradient_ascent=True))

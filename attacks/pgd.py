"""Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu, 2018, "Towards Deep Learning Models
Resistant to Adversarial Attacks", arXiv:1706.06083), Linf and L2.

From a random point of the eps-ball (``random_init``), repeat ``steps`` times:
    x <- clip(x0 + Proj_eps(x + alpha * dir(grad_x L(f(x), y)) - x0))
with dir = sign for Linf and grad/||grad||_2 for L2, and alpha = ``step_size`` (default 2.5 eps / steps).

Evaluation semantics (``keep_adversarial=True``, the default): per example the **first** misclassified iterate is
kept, over all steps and restarts (ART returns the last iterate of a restart instead), and examples not yet broken
are attacked again from a new random start. ``early_stop=True`` additionally stops computing gradients for an
example once it is misclassified; since the kept point is the same, robust accuracy is identical to the
fixed-step run by construction (same random draws), for far fewer passes. Both run the same masked loop: fixed
steps never drop an example, early stop drops the broken ones every ``compact_every(device)`` steps. Training
passes ``keep_adversarial=False`` to get the last (highest-loss) iterate.

Targeted: ``target`` (N,) int64 makes each step descend the cross-entropy to the target class; success for robust
accuracy is still any misclassification of the true label ``y``. PGD-T (``pgd_t``) runs PGD towards each of the
``n_targets`` classes ranked highest after y, in turn (attacks/targeted.py).

Parameters (``PGDParams``): steps, restarts, early_stop, step_size, random_init, keep_adversarial; PGD-T adds
n_targets. Shapes: x (N, ...) in the clip range, y (N,) int64 true labels, target (N,) int64.
Cost: at most ``steps * restarts`` forward+backward per example; the exact count is returned.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import (
    AttackOutput,
    Ball,
    ascent_direction,
    attack_with_restarts,
    clip_to,
    compact_every,
    loss_gradient,
    project,
    random_start,
)
from attacks.spec import AttackSpec, MultiTarget, register, setting
from attacks.targeted import multi_target


def default_step_size(eps: float, steps: int) -> float:
    """2.5 * eps / steps (Madry et al.): the iterate can cross the ball and still reach its boundary."""
    return 2.5 * eps / max(steps, 1)


@dataclass(frozen=True)
class PGDParams:
    """steps, restarts; early_stop: stop attacking an example once broken (same result, fewer passes); step_size:
    alpha (None: 2.5 eps / steps); random_init: start from a random point of the ball (else from x);
    keep_adversarial: keep the first misclassified iterate (evaluation) rather than the last one (training)."""

    steps: int = setting(20, "pgd_steps")
    restarts: int = setting(1, "pgd_restarts")
    early_stop: bool = setting(False, "early_stop")
    step_size: float | None = None
    random_init: bool = True
    keep_adversarial: bool = True

    def __post_init__(self):
        if self.early_stop and not self.keep_adversarial:
            raise ValueError("early_stop keeps the first adversarial iterate: it needs keep_adversarial=True")

    def alpha(self, eps: float) -> float:
        return default_step_size(eps, self.steps) if self.step_size is None else self.step_size

    def describe(self, label: str) -> str:
        return f"{label}, {self.steps} steps x {self.restarts} restart(s), step 2.5 eps/steps"

    def cost(self) -> tuple[float, float]:
        return float(self.steps * self.restarts), 0.0


def _put(t: torch.Tensor, rows, value: torch.Tensor) -> torch.Tensor:
    """``t`` with ``value`` at ``rows``: written in place for the rows still attacked, or ``value`` itself when
    every row is (the fixed-step run: the new iterate replaces the old one)."""
    if isinstance(rows, slice):
        return value
    t[rows] = value
    return t


def _one_run(model, xs, ys, ts, ball: Ball, p: PGDParams, generator):
    """One run from one start: (x kept, broken mask or None when one start is all, example passes).

    One masked loop: ``rows`` are the examples still attacked, all of them for fixed steps (never compacted, no
    host synchronisation), the unbroken ones under early stop (dropped every ``compact_every(device)`` steps, the
    loop's only synchronisation), so the kept point of every example is the fixed-step run's.
    """
    eps, norm, clip = ball.eps, ball.norm, ball.clip
    alpha, keep, n = p.alpha(eps), p.keep_adversarial, xs.shape[0]
    xa = clip_to(xs + random_start(xs, eps, norm, generator), clip) if p.random_init else xs.clone()
    found = xa.clone() if keep else None
    done = torch.zeros(n, dtype=torch.bool, device=xs.device)
    shape1 = (-1,) + (1,) * (xs.dim() - 1)
    rows = torch.arange(n, device=xs.device) if p.early_stop else slice(None)  # a tensor exactly under early stop
    every, passes = compact_every(xs.device), 0
    for i in range(p.steps):
        if isinstance(rows, torch.Tensor) and i and i % every == 0:  # the loop's only host synchronisation
            rows = rows[~done[rows]]
            if rows.numel() == 0:
                break
        x_r, x0_r = xa[rows], xs[rows]
        _, grad, logits = loss_gradient(model, x_r, ys[rows], None if ts is None else ts[rows])
        passes += x_r.shape[0]
        if found is not None:  # keep
            hit = logits.argmax(1).ne(ys[rows]) & ~done[rows]
            found = _put(found, rows, torch.where(hit.view(shape1), x_r, found[rows]))
            done = _put(done, rows, done[rows] | hit)
        xa = _put(xa, rows, clip_to(x0_r + project(x_r + alpha * ascent_direction(grad, norm) - x0_r, eps, norm), clip))
    kept = torch.where(done.view(shape1), found, xa) if found is not None else xa
    if p.restarts <= 1 and not keep:  # adversarial training: the last iterate, no extra forward pass
        return kept, None, passes
    broken = done.clone()
    if isinstance(rows, torch.Tensor) and rows.numel() == 0:
        return kept, broken, passes
    with torch.no_grad():  # the final iterate (no gradient needed: a forward only)
        broken[rows] = broken[rows] | model(xa[rows]).argmax(1).ne(ys[rows])
    return kept, broken, passes


def projected_gradient_descent(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball,
                               params: PGDParams = PGDParams(), *, target: torch.Tensor | None = None,
                               generator: torch.Generator | None = None) -> AttackOutput:
    """PGD with ``params.restarts`` starts, each on the examples no earlier one broke."""
    return attack_with_restarts(model, x, y, target, params.restarts,
                                lambda xs, ys, ts: _one_run(model, xs, ys, ts, ball, params, generator))


pgd = register(AttackSpec("pgd", "PGD", projected_gradient_descent, PGDParams, gradient_ascent=True))


@dataclass(frozen=True)
class PGDTParams(MultiTarget, PGDParams):
    """PGD's, and n_targets: the classes ranked highest after y, attacked in turn."""

    n_targets: int = setting(3, "n_targets")



def pgd_multi_target(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball,
                     params: PGDTParams = PGDTParams(), *, generator: torch.Generator | None = None) -> AttackOutput:
    """PGD-T: PGD descending the cross-entropy to each of the ``n_targets`` ranked classes in turn."""
    return multi_target(lambda xs, ys, t: projected_gradient_descent(model, xs, ys, ball, params, target=t,
                                                                     generator=generator),
                        model, x, y, params.n_targets)


pgd_t = register(AttackSpec("pgd_t", "PGD-T", pgd_multi_target, PGDTParams, gradient_ascent=True))

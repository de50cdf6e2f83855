"""TRADES inner maximisation (Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, 2019, "Theoretically Principled
Trade-off between Robustness and Accuracy", arXiv:1901.08573).

x' maximises KL(f(x) || f(x')) inside the eps-ball, from x + 0.001 * N(0, I), by ``steps`` signed-gradient
(Linf) or normalised-gradient (L2) ascent steps of ``step_size``; no labels are used. Training then minimises
CE(f(x), y) + beta * KL(f(x) || f(x')).
Shapes: x (N, ...) in the clip range. Cost: ``steps`` forward+backward per example (+1 forward for f(x)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attacks.base import AttackOutput, Ball, ascent_direction, clip_to, draw, frozen_eval, project


def trades_kl(logits_adv: torch.Tensor, probs_clean: torch.Tensor) -> torch.Tensor:
    """Summed KL(p_clean || p_adv)."""
    return F.kl_div(F.log_softmax(logits_adv, 1), probs_clean, reduction="sum")


def trades_perturb(model: torch.nn.Module, x: torch.Tensor, ball: Ball, *, steps: int = 10,
                   step_size: float | None = None, generator: torch.Generator | None = None) -> AttackOutput:
    """x' inside ``ball`` after ``steps`` ascent steps on KL(f(x) || f(x')), from x + 0.001 N(0, I)."""
    eps, norm, clip = ball.eps, ball.norm, ball.clip
    alpha = step_size if step_size is not None else 2.5 * eps / max(steps, 1)
    with frozen_eval(model):
        with torch.no_grad():
            p_clean = F.softmax(model(x), 1)
        noise = draw("randn", x.shape, generator, x)
        xa = clip_to(x + 0.001 * noise, clip).detach()
        for _ in range(steps):
            xa.requires_grad_(True)
            loss = trades_kl(model(xa), p_clean)
            (grad,) = torch.autograd.grad(loss, xa)
            xa = clip_to(x + project(xa.detach() + alpha * ascent_direction(grad, norm) - x, eps, norm), clip)
            xa = xa.detach()
    return AttackOutput(x_adv=xa, example_passes=steps * x.shape[0])

"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015, "Explaining and Harnessing Adversarial
Examples", arXiv:1412.6572).

x_adv = clip(x + eps * sign(grad_x L(f(x), y)))  (Linf);  the L2 variant steps along grad / ||grad||_2 (FGM).
With ``target``, the step descends the cross-entropy to the target class instead.

Shapes: x (N, ...) float in the clip range, y (N,) int64 true labels, target (N,) int64.
Cost: one forward+backward per example.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import AttackOutput, Ball, ascent_direction, clip_to, frozen_eval, loss_gradient, project
from attacks.spec import AttackSpec, register


@dataclass(frozen=True)
class FGSMParams:
    """None: one step of size eps."""

    def describe(self, label: str) -> str:
        return f"{label} (one step of size eps)"

    def cost(self) -> tuple[float, float]:
        return 1.0, 0.0


def fast_gradient_sign(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball,
                       params: FGSMParams = FGSMParams(), *, target: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> AttackOutput:
    """One step of size eps along the loss gradient's ascent direction (``generator``: unused, FGSM draws
    nothing)."""
    with frozen_eval(model):
        _, grad, _ = loss_gradient(model, x, y, target)
        delta = project(ball.eps * ascent_direction(grad, ball.norm), ball.eps, ball.norm)
        x_adv = clip_to(x + delta, ball.clip).detach()
    return AttackOutput(x_adv=x_adv, example_passes=int(x.shape[0]))


fgsm = register(AttackSpec("fgsm", "FGSM", fast_gradient_sign, FGSMParams))

"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, 2015, "Explaining and Harnessing Adversarial
Examples", arXiv:1412.6572).

x_adv = clip(x + eps * sign(grad_x L(f(x), y)))  (Linf);  the L2 variant steps along grad / ||grad||_2 (FGM).

Shapes: x (N, ...) float in the clip range, y (N,) int64 true labels (or target labels when ``targeted``).
Cost: one forward+backward per example.
"""
from __future__ import annotations

import torch

from attacks.base import AttackOutput, Norm, ascent_direction, clip_to, frozen_eval, input_gradient, project


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: Norm = Norm.LINF,
         clip: tuple = (0.0, 1.0), targeted: bool = False, **_unused) -> AttackOutput:
    norm = Norm(norm)
    with frozen_eval(model):
        grad, _ = input_gradient(model, x, y, targeted)
        delta = project(eps * ascent_direction(grad, norm), eps, norm)
        x_adv = clip_to(x + delta, clip).detach()
    return AttackOutput(x_adv=x_adv, example_passes=int(x.shape[0]))

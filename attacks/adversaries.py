"""The inner maximisation of adversarial training, and the regularisers practitioners try first.

Methods: "pgd" (Madry et al. 2018, PGD-AT), "fgsm_rs" (Wong, Rice & Kolter 2020 "Fast is better than free": FGSM from
a random start, step 1.25 eps), "fgsm" (Goodfellow et al. 2015: FGSM from the clean point; prone to catastrophic
overfitting at large eps, kept to reproduce it), "trades" (Zhang et al. 2019: KL inner maximisation; the loss adds
beta * KL), "ibp" (Gowal et al. 2018: certified training on IBP's worst-case logits, attacks/certified_training.py;
no adversarial example, the loss bounds the worst case over the ball). The adversarial example is generated against
the current model in eval mode (the attack's mode guard).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from attacks.base import Ball, Norm
from attacks.pgd import PGDParams, projected_gradient_descent
from attacks.trades import trades_perturb

ADVERSARY_METHODS = ("pgd", "fgsm_rs", "fgsm", "trades", "ibp")


@dataclass(frozen=True)
class Adversary:
    """method (above); eps, norm: the training threat model, in input units; steps: PGD/TRADES steps (ignored by the
    FGSM methods); beta: the TRADES weight."""

    method: str
    eps: float
    norm: Norm = Norm.LINF
    steps: int = 7
    beta: float = 6.0

    def at(self, eps: float) -> Adversary:
        """The same adversary at another budget (the eps warm-up)."""
        return self if eps == self.eps else dataclasses.replace(self, eps=eps)

    def perturb(self, model, x, y, clip, generator):
        """The adversarial batch for (x, y) under this adversary, inside ``clip`` (an AttackOutput)."""
        ball = Ball(self.eps, self.norm, clip)
        if self.method == "pgd":
            return projected_gradient_descent(model, x, y, ball, PGDParams(steps=self.steps, keep_adversarial=False),
                                              generator=generator)
        if self.method in ("fgsm_rs", "fgsm"):
            rs = self.method == "fgsm_rs"
            p = PGDParams(steps=1, step_size=(1.25 if rs else 1.0) * self.eps, random_init=rs, keep_adversarial=False)
            return projected_gradient_descent(model, x, y, ball, p, generator=generator)
        if self.method == "trades":
            return trades_perturb(model, x, ball, steps=self.steps, generator=generator)
        if self.method == "ibp":
            raise ValueError("method 'ibp' trains on bounds, not on adversarial examples (attacks/certified_training)")
        raise ValueError(f"unknown adversarial-training method {self.method!r}; valid: {', '.join(ADVERSARY_METHODS)}")


@dataclass(frozen=True)
class Regularisers:
    """All off by default (the L2 penalty is the recipe's ``weight_decay``, through the optimiser). l1:
    lambda * sum |w|; label_smoothing:
    CE smoothing; mixup_alpha: Beta(alpha, alpha) mixup of inputs and one-hot targets (Zhang et al. 2018);
    input_noise: std of Gaussian noise added to training inputs (clipped to the valid range); grad_clip: max
    gradient L2 norm."""

    l1: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    input_noise: float = 0.0
    grad_clip: float = 0.0

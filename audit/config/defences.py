"""Config sections of the defended variants (``[[defences]]``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from attacks.training import ADVERSARY_METHODS
from audit.config.sections import finite
from audit.core.errors import UsageError

DEFENCE_METHODS = ("none", *ADVERSARY_METHODS)


@dataclass(frozen=True)
class DefenceConfig:
    """One defended variant, trained from the same factory with the same data and budget as the baseline, or a
    checkpoint the user already trained (``weights``, read like model.weights).

    method: "none" (regularisers only), "pgd" (Madry PGD adversarial training), "fgsm_rs" (FGSM with random
    start, Wong et al. 2020, with the catastrophic-overfitting guard) or "trades" (Zhang et al. 2019, ``beta``).
    Regularisers, combinable with any method: weight_decay (L2), l1, label_smoothing, mixup_alpha, input_noise
    (Gaussian std in input units), grad_clip (max gradient norm).
    """

    name: str
    method: str = "pgd"
    eps: float = 0.1
    steps: int = 7
    beta: float = 6.0
    weight_decay: float = 0.0
    l1: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    input_noise: float = 0.0
    grad_clip: float = 0.0
    weights: str = ""

    def validate(self, path: str) -> None:
        finite(path, eps=self.eps, beta=self.beta, weight_decay=self.weight_decay, l1=self.l1,
               label_smoothing=self.label_smoothing, mixup_alpha=self.mixup_alpha, input_noise=self.input_noise,
               grad_clip=self.grad_clip)
        if self.method not in DEFENCE_METHODS:
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: {', '.join(DEFENCE_METHODS)}")
        if self.eps <= 0 or self.steps < 1 or self.beta < 0:
            raise UsageError(f"{path}: eps must be > 0, steps >= 1 and beta >= 0")
        if min(self.weight_decay, self.l1, self.mixup_alpha, self.input_noise, self.grad_clip) < 0 or \
                not 0 <= self.label_smoothing < 1:
            raise UsageError(f"{path}: regulariser strengths must be >= 0 (label_smoothing below 1)")
        if not self.name or self.name == "baseline":
            raise UsageError(f"{path}.name: give each defence a name other than 'baseline'")

    def describe(self) -> str:
        labels = {"none": "no adversarial training", "pgd": f"PGD adversarial training (Madry et al. 2018), "
                  f"{self.eps:g} eps, {self.steps} steps",
                  "fgsm_rs": f"FGSM adversarial training with random start (Wong et al. 2020), {self.eps:g} eps, "
                             f"catastrophic-overfitting guard",
                  "trades": f"TRADES (Zhang et al. 2019), {self.eps:g} eps, {self.steps} steps, beta {self.beta:g}"}
        text = labels[self.method]
        regs = [f"{k.replace('_', ' ')} {getattr(self, k):g}" for k in
                ("weight_decay", "l1", "label_smoothing", "mixup_alpha", "input_noise", "grad_clip") if getattr(self, k)]
        if regs:
            text += "; " + ", ".join(regs)
        return f"checkpoint {Path(self.weights).name} supplied by the user" if self.weights else text

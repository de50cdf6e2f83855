"""Config sections of the defended variants (``[[defences]]``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from attacks.adversaries import ADVERSARY_METHODS
from attacks.recipes import SELECT
from audit.config.names import identifier
from audit.config.sections import finite
from audit.core.errors import UsageError

DEFENCE_METHODS = ("none", *ADVERSARY_METHODS)


@dataclass(frozen=True)
class DefenceConfig:
    """One defended variant, trained from the same factory with the same data and budget as the baseline, or a
    checkpoint the user already trained (``weights``, read like model.weights).

    method: "none" (regularisers only), "pgd" (Madry PGD adversarial training), "fgsm_rs" (FGSM with random
    start, Wong et al. 2020, with the catastrophic-overfitting guard), "fgsm" (Goodfellow et al. 2015, from the
    clean point: prone to catastrophic overfitting, guarded the same way), "trades" (Zhang et al. 2019, ``beta``)
    or "ibp" (certified training on interval bounds, Gowal et al. 2018: the eps and the clean loss's weight, 1 to
    0.5, ramp over the warm-up; for models of Linear/Conv/ReLU/pooling layers without BatchNorm or Dropout).
    Recipe: ``warmup_epochs`` of linear eps warm-up, the weights of the ``select``-ed epoch, judged on ``holdout``
    of the training rows set aside (attacks/recipes.py).
    Regularisers, combinable with any method: weight_decay (L2), l1, label_smoothing, mixup_alpha, input_noise
    (Gaussian std in input units), grad_clip (max gradient norm).
    """

    name: str
    method: str = "pgd"
    eps: float | None = None   # None: the threat model's eps (else 0.1)
    steps: int = 7
    beta: float = 6.0
    weight_decay: float = 0.0
    l1: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    input_noise: float = 0.0
    grad_clip: float = 0.0
    warmup_epochs: float | None = None  # None: 40% of the epochs for adversarial training, 0 otherwise
    select: str = "best"                # "best": the epoch with the best held-out PGD accuracy; "last"
    holdout: float = 0.1                # share of the training rows held out to monitor epochs (at most 512)
    weights: str = ""

    def validate(self, path: str) -> None:
        finite(path, eps=self.eps, beta=self.beta, weight_decay=self.weight_decay, l1=self.l1,
               label_smoothing=self.label_smoothing, mixup_alpha=self.mixup_alpha, input_noise=self.input_noise,
               grad_clip=self.grad_clip, holdout=self.holdout, warmup_epochs=self.warmup_epochs)
        if self.method not in DEFENCE_METHODS:
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: {', '.join(DEFENCE_METHODS)}")
        if (self.eps is not None and self.eps <= 0) or self.steps < 1 or self.beta < 0:
            raise UsageError(f"{path}: eps must be > 0, steps >= 1 and beta >= 0")
        if min(self.weight_decay, self.l1, self.mixup_alpha, self.input_noise, self.grad_clip) < 0 or \
                not 0 <= self.label_smoothing < 1:
            raise UsageError(f"{path}: regulariser strengths must be >= 0 (label_smoothing below 1)")
        if self.method == "ibp" and self.mixup_alpha > 0:
            raise UsageError(f"{path}: mixup_alpha does not combine with method 'ibp' (the bounds are of the "
                             f"unmixed inputs)")
        if self.select not in SELECT:
            raise UsageError(f"{path}.select: {self.select!r} is not valid; valid: {', '.join(map(repr, SELECT))}")
        if not 0 <= self.holdout <= 0.5 or (self.warmup_epochs is not None and self.warmup_epochs < 0):
            raise UsageError(f"{path}: holdout must be in [0, 0.5] and warmup_epochs >= 0")
        if not self.name or self.name == "baseline":
            raise UsageError(f"{path}.name: give each defence a name other than 'baseline'")
        identifier(f"{path}.name", self.name)

    def describe(self) -> str:
        labels = {"none": "no adversarial training", "pgd": f"PGD adversarial training (Madry et al. 2018), "
                  f"{self.eps:g} eps, {self.steps} steps",
                  "fgsm_rs": f"FGSM adversarial training with random start (Wong et al. 2020), {self.eps:g} eps, "
                             f"catastrophic-overfitting guard",
                  "fgsm": f"FGSM adversarial training (Goodfellow et al. 2015), {self.eps:g} eps, "
                          f"catastrophic-overfitting guard",
                  "trades": f"TRADES (Zhang et al. 2019), {self.eps:g} eps, {self.steps} steps, beta {self.beta:g}",
                  "ibp": f"IBP certified training (Gowal et al. 2018), {self.eps:g} eps, " + (
                      "clean weight 0.5 (no warm-up)" if self.warmup_epochs == 0 else
                      "eps and clean weight (1 to 0.5) ramped over the warm-up")}
        text = labels[self.method]
        knobs = ("weight_decay", "l1", "label_smoothing", "mixup_alpha", "input_noise", "grad_clip")
        regs = [f"{k.replace('_', ' ')} {getattr(self, k):g}" for k in knobs if getattr(self, k)]
        if regs:
            text += "; " + ", ".join(regs)
        return f"checkpoint {Path(self.weights).name} supplied by the user" if self.weights else text

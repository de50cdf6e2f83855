"""Training recipes: the optimiser, the learning-rate schedule, the eps warm-up, mixed precision and how the final
weights are chosen. The defaults of advaudit's defences follow the published recipes that converge (REFERENCE
section 10): a linear eps warm-up over the first epochs (the PGD step scales with it), a one-cycle learning rate,
and the weights of the epoch with the best PGD accuracy on a held-out slice of the training data (robust
overfitting, Rice, Wong & Kolter 2020).

optimizer: "adam" or "sgd" (momentum, Nesterov off); schedule: "constant", "onecycle" (linear up to ``lr`` over the
first 40% of the steps, then down to 0; Smith & Topin 2019, as in Wong et al. 2020) or "piecewise" (``lr``, then
/10 at 50% and /100 at 75% of the epochs; Madry et al. / Rice et al.); warmup_epochs: epochs over which the
training eps grows linearly from 0 to eps, per step; precision: "bf16" autocasts forward and backward on a GPU
(on a CPU it is fp32); channels_last: trains a 4-d model and its batches in the channels-last memory format
(faster convolutions on GPUs with tensor cores; the weights are handed back contiguous); select: "last" or "best"
(by held-out robust accuracy for adversarial training, held-out clean accuracy otherwise); holdout: rows of the
training data set aside to monitor every epoch (0: none; the catastrophic-overfitting guard then uses a 256-row
training probe); weight_decay: the optimiser's L2 penalty; reg: the other regularisers (attacks/adversaries.py);
overfit_guard: the catastrophic-overfitting guard of the FGSM methods; clip: the valid input range (the
adversary's and the input noise's); seed: the generator of the batch order, the noise and the adversary.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from attacks.adversaries import Regularisers

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "onecycle", "piecewise")
SELECT = ("last", "best")


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    precision: str = "fp32"
    channels_last: bool = False
    select: str = "last"
    holdout: int = 0
    reg: Regularisers = Regularisers()
    overfit_guard: bool = True
    clip: tuple = (0.0, 1.0)
    seed: int = 0

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def lr_factor(self, step: int, total: int) -> float:
        """The learning rate at optimiser step ``step`` of ``total``, as a multiple of ``lr``."""
        t = step / max(total, 1)
        if self.schedule == "onecycle":
            return max(t / 0.4, 1e-3) if t < 0.4 else max((1 - t) / 0.6, 0.0)
        if self.schedule == "piecewise":
            return 1.0 if t < 0.5 else (0.1 if t < 0.75 else 0.01)
        return 1.0

    def eps_factor(self, step: int, steps_per_epoch: int) -> float:
        """The share of the training eps at optimiser step ``step`` (1 after the warm-up)."""
        if self.warmup_epochs <= 0:
            return 1.0
        return min(1.0, (step + 1) / (self.warmup_epochs * steps_per_epoch))

    def autocast(self, device: torch.device):
        if self.precision == "bf16" and device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def scheduler(opt: torch.optim.Optimizer, recipe: Recipe, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: recipe.lr_factor(step, total_steps))


def auto_warmup(epochs: int) -> float:
    """The default eps warm-up of adversarial training: 40% of the epochs (4 of 10 in REFERENCE section 10)."""
    return math.floor(0.4 * epochs * 10) / 10

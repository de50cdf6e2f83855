"""Training loops: natural training and adversarial training (Madry et al. 2018 PGD-AT; Wong, Rice & Kolter 2020
"Fast is better than free", FGSM with random start and step 1.25 * eps).

The adversarial example of each batch is generated against the current model in eval mode (the attack's mode
guard), then the model is updated on it in train mode. Both recipes share one loop; only the inner attack differs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from attacks.base import Norm
from attacks.fgsm import fgsm
from attacks.pgd import pgd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adversary:
    """The inner maximisation of adversarial training.

    method: "pgd" (Madry PGD-AT) or "fgsm_rs" (FGSM from a random start, step 1.25 eps; Wong et al. 2020).
    eps, norm: the training threat model, in input units. steps: PGD steps (ignored by fgsm_rs).
    """

    method: str
    eps: float
    norm: Norm = Norm.LINF
    steps: int = 7

    def perturb(self, model, x, y, clip, generator):
        if self.method == "pgd":
            return pgd(model, x, y, eps=self.eps, norm=self.norm, clip=clip, steps=self.steps,
                       generator=generator)
        if self.method == "fgsm_rs":
            return pgd(model, x, y, eps=self.eps, norm=self.norm, clip=clip, steps=1,
                       step_size=1.25 * self.eps, generator=generator)
        raise ValueError(f"unknown adversarial-training method {self.method!r}; valid: 'pgd', 'fgsm_rs'")


@dataclass(frozen=True)
class TrainStats:
    """What a training run cost: wall time, epochs and forward+backward passes summed over examples."""

    seconds: float
    epochs: int
    example_passes: int


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 64,
          lr: float = 1e-3, weight_decay: float = 0.0, adversary: Adversary | None = None,
          clip: tuple = (0.0, 1.0), seed: int = 0, desc: str = "train") -> TrainStats:
    """Train ``model`` in place on (x, y) with Adam; with ``adversary``, on adversarial examples only.

    ``x`` is a tensor (moved to the model's device once) or any lazily read rows object indexable by an index
    tensor (read batch by batch, so the training set need not fit in memory).
    """
    device = next(model.parameters()).device
    if isinstance(x, torch.Tensor):
        x = x.to(device)
    y = y.to(device)
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(device), clip[1].to(device))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    passes = 0
    start = time.perf_counter()
    n = x.shape[0]
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=None, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x[idx].to(device), y[idx.to(device)]
            if adversary is not None:
                out = adversary.perturb(model, xb, yb, clip, gen)
                xb, passes = out.x_adv, passes + out.example_passes
            model.train()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            passes += xb.shape[0]
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    stats = TrainStats(seconds=time.perf_counter() - start, epochs=epochs, example_passes=passes)
    log.info("%s: %d epochs in %.1fs", desc, epochs, stats.seconds)
    return stats

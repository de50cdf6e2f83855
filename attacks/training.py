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

from attacks.base import Norm, clip_to, model_device
from attacks.fgsm import fgsm
from attacks.pgd import pgd
from attacks.trades import trades_kl, trades_perturb

log = logging.getLogger(__name__)
ADVERSARY_METHODS = ("pgd", "fgsm_rs", "trades")


@dataclass(frozen=True)
class Adversary:
    """The inner maximisation of adversarial training.

    method: "pgd" (Madry PGD-AT), "fgsm_rs" (FGSM from a random start, step 1.25 eps; Wong et al. 2020) or
    "trades" (KL inner maximisation; the loss adds beta * KL, Zhang et al. 2019).
    eps, norm: the training threat model, in input units. steps: PGD/TRADES steps (ignored by fgsm_rs).
    """

    method: str
    eps: float
    norm: Norm = Norm.LINF
    steps: int = 7
    beta: float = 6.0

    def perturb(self, model, x, y, clip, generator):
        if self.method == "pgd":
            return pgd(model, x, y, eps=self.eps, norm=self.norm, clip=clip, steps=self.steps,
                       keep_adversarial=False, generator=generator)
        if self.method == "fgsm_rs":
            return pgd(model, x, y, eps=self.eps, norm=self.norm, clip=clip, steps=1,
                       step_size=1.25 * self.eps, keep_adversarial=False, generator=generator)
        if self.method == "trades":
            return trades_perturb(model, x, eps=self.eps, norm=self.norm, clip=clip, steps=self.steps,
                                  generator=generator)
        raise ValueError(f"unknown adversarial-training method {self.method!r}; valid: 'pgd', 'fgsm_rs', 'trades'")


@dataclass(frozen=True)
class Regularisers:
    """The regularisers practitioners try first, all off by default.

    weight_decay: L2 penalty through the optimiser; l1: lambda * sum |w|; label_smoothing: CE smoothing;
    mixup_alpha: Beta(alpha, alpha) mixup of inputs and one-hot targets (Zhang et al. 2018); input_noise: std of
    Gaussian noise added to training inputs (clipped to the valid range); grad_clip: max gradient L2 norm.
    """

    weight_decay: float = 0.0
    l1: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    input_noise: float = 0.0
    grad_clip: float = 0.0


@dataclass(frozen=True)
class TrainStats:
    """What a training run cost: wall time, epochs and forward+backward passes summed over examples."""

    seconds: float
    epochs: int
    example_passes: int
    stopped_early: str = ""  # why training stopped before ``epochs`` (catastrophic-overfitting guard)
    guard_history: tuple[float, ...] = ()  # PGD-10 accuracy on the training probe after each epoch (FGSM-RS)


def _loss(model, xb, yb, reg: Regularisers, gen):
    if reg.mixup_alpha > 0:
        lam = float(torch.distributions.Beta(reg.mixup_alpha, reg.mixup_alpha).sample())
        perm = torch.randperm(xb.shape[0], generator=gen).to(xb.device)
        xb = lam * xb + (1 - lam) * xb[perm]
        logits = model(xb)
        return (lam * F.cross_entropy(logits, yb, label_smoothing=reg.label_smoothing)
                + (1 - lam) * F.cross_entropy(logits, yb[perm], label_smoothing=reg.label_smoothing))
    return F.cross_entropy(model(xb), yb, label_smoothing=reg.label_smoothing)


def _pgd_accuracy(model, x, y, adversary: Adversary, clip, gen) -> float:
    out = pgd(model, x, y, eps=adversary.eps, norm=adversary.norm, clip=clip, steps=10, generator=gen)
    with torch.no_grad():
        model.eval()
        return float((model(out.x_adv).argmax(1) == y).float().mean())


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 64,
          lr: float = 1e-3, weight_decay: float = 0.0, adversary: Adversary | None = None,
          clip: tuple = (0.0, 1.0), seed: int = 0, desc: str = "train", reg: Regularisers | None = None,
          overfit_guard: bool = True) -> TrainStats:
    """Train ``model`` in place on (x, y) with Adam; with ``adversary``, on adversarial examples only (TRADES:
    clean cross-entropy plus beta * KL to the adversarial output).

    ``x`` is a tensor (moved to the model's device once) or any lazily read rows object indexable by an index
    tensor (read batch by batch, so the training set need not fit in memory).
    Catastrophic-overfitting guard (FGSM-RS, Wong et al. 2020 / Rice et al. 2020): after each epoch, PGD-10
    accuracy on a fixed batch of 256 training points is measured; if it falls by more than 20 points from the
    best epoch, the best epoch's weights are restored and training stops.
    """
    reg = reg or Regularisers(weight_decay=weight_decay)
    device = model_device(model)
    if isinstance(x, torch.Tensor):
        x = x.to(device)
    y = y.to(device)
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(device), clip[1].to(device))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=reg.weight_decay)
    passes = 0
    start = time.perf_counter()
    n = x.shape[0]
    guard = overfit_guard and adversary is not None and adversary.method == "fgsm_rs"
    probe = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))[:256]
    best_acc, best_state, stopped, history = -1.0, None, "", []
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=None, leave=False)
    done = 0
    for _ in bar:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x[idx].to(device), y[idx.to(device)]
            if reg.input_noise > 0:
                noise = torch.randn(xb.shape, generator=gen).to(device, xb.dtype)
                xb = clip_to(xb + reg.input_noise * noise, clip)
            if adversary is not None and adversary.method == "trades":
                out = adversary.perturb(model, xb, yb, clip, gen)
                passes += out.example_passes
                model.train()
                logits = model(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=reg.label_smoothing) + \
                    adversary.beta * trades_kl(model(out.x_adv), F.softmax(logits, 1)) / xb.shape[0]
                passes += xb.shape[0]  # the second forward+backward of the pair
            else:
                if adversary is not None:
                    out = adversary.perturb(model, xb, yb, clip, gen)
                    xb, passes = out.x_adv, passes + out.example_passes
                model.train()
                loss = _loss(model, xb, yb, reg, gen)
            if reg.l1 > 0:
                loss = loss + reg.l1 * sum(p.abs().sum() for p in model.parameters() if p.requires_grad)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if reg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), reg.grad_clip)
            opt.step()
            passes += xb.shape[0]
        done += 1
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if guard:
            acc = _pgd_accuracy(model, x[probe].to(device), y[probe.to(device)], adversary, clip, gen)
            passes += 10 * len(probe)
            history.append(acc)
            if acc > best_acc:
                best_acc, best_state = acc, {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif acc < best_acc - 0.2:
                model.load_state_dict(best_state)
                stopped = (f"catastrophic overfitting at epoch {done}: PGD accuracy on a training probe fell from "
                           f"{best_acc:.1%} to {acc:.1%}; restored the best epoch")
                log.warning("%s: %s", desc, stopped)
                break
    model.eval()
    stats = TrainStats(seconds=time.perf_counter() - start, epochs=done, example_passes=passes,
                       stopped_early=stopped, guard_history=tuple(history))
    log.info("%s: %d epochs in %.1fs", desc, done, stats.seconds)
    return stats

"""Training loops: natural and adversarial training under one ``Recipe`` (attacks/recipes.py).

The adversarial example of each batch is generated against the current model in eval mode (the attack's mode
guard), then the model is updated on it in train mode. The inner loop never waits for the device: batches are
indexed by device tensors, random draws come from a generator on the model's device, and losses are summed on the
device and read once per epoch. After each epoch a monitor set (a held-out slice of the training data, or a 256-row
training probe) is scored clean and under PGD-10 at the full training eps: that history drives the choice of the
final weights (``select = "best"``), the catastrophic-overfitting guard (FGSM methods: stop and restore the best
epoch when PGD accuracy falls by more than 20 points) and the training-health check.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from attacks.adversaries import ADVERSARY_METHODS, Adversary, Regularisers
from attacks.base import clip_to, model_device
from attacks.pgd import pgd
from attacks.recipes import Recipe, scheduler
from attacks.trades import trades_kl

log = logging.getLogger(__name__)
GUARD_DROP = 0.2
PROBE_ROWS = 256
__all__ = ["ADVERSARY_METHODS", "Adversary", "EpochRecord", "Recipe", "Regularisers", "TrainStats", "train"]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean training loss, the training eps reached, and the monitor set's clean and PGD-10 accuracy
    (robust is None for natural training)."""

    loss: float | None           # None when it was not finite
    eps: float | None
    monitor_clean: float | None  # None when no monitor set was scored
    monitor_robust: float | None


@dataclass(frozen=True)
class TrainStats:
    """What a training run cost and how it went. ``selected_epoch`` (1-based) holds the weights kept."""

    seconds: float
    epochs: int
    example_passes: int
    stopped_early: str = ""                      # why training stopped before ``epochs``
    guard_history: tuple[float, ...] = ()        # monitor PGD accuracy per epoch (FGSM methods)
    history: tuple[EpochRecord, ...] = ()
    selected_epoch: int = 0
    diverged: bool = False                       # a non-finite loss stopped training
    monitor: str = ""                            # "held-out (N rows)" or "training probe (N rows)"


def _loss(model, xb, yb, reg: Regularisers, gen):
    if reg.mixup_alpha > 0:
        lam = float(torch.distributions.Beta(reg.mixup_alpha, reg.mixup_alpha).sample())
        perm = torch.randperm(xb.shape[0], generator=gen, device=gen.device).to(xb.device)
        xb = lam * xb + (1 - lam) * xb[perm]
        logits = model(xb)
        return (lam * F.cross_entropy(logits, yb, label_smoothing=reg.label_smoothing)
                + (1 - lam) * F.cross_entropy(logits, yb[perm], label_smoothing=reg.label_smoothing))
    return F.cross_entropy(model(xb), yb, label_smoothing=reg.label_smoothing)


@torch.no_grad()
def _accuracy(model, x, y) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def _monitor(model, x, y, adversary: Adversary | None, clip, seed: int) -> tuple[float, float | None]:
    clean = _accuracy(model, x, y)
    if adversary is None:
        return clean, None
    gen = torch.Generator(device=x.device).manual_seed(seed)
    out = pgd(model, x, y, eps=adversary.eps, norm=adversary.norm, clip=clip, steps=10, generator=gen)
    return clean, _accuracy(model, out.x_adv, y)


def _split(n: int, recipe: Recipe, seed: int, fgsm_guard: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(training rows, monitor rows, monitor label): a held-out slice, or a training probe (no rows withheld)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    if recipe.holdout > 0 and n > 2 * recipe.holdout:
        held = perm[:recipe.holdout].sort().values
        return perm[recipe.holdout:].sort().values, held, f"held-out ({recipe.holdout} rows)"
    return torch.arange(n), perm[:PROBE_ROWS].sort().values, f"training probe ({min(n, PROBE_ROWS)} rows)"


def train(model: torch.nn.Module, x, y: torch.Tensor, *, epochs: int | None = None, batch_size: int = 64,
          lr: float = 1e-3, weight_decay: float = 0.0, adversary: Adversary | None = None, clip: tuple = (0.0, 1.0),
          seed: int = 0, desc: str = "train", reg: Regularisers | None = None, overfit_guard: bool = True,
          recipe: Recipe | None = None) -> TrainStats:
    """Train ``model`` in place on (x, y) under ``recipe`` (or a constant-rate Adam recipe from ``epochs``,
    ``batch_size``, ``lr``); with ``adversary``, on adversarial examples (TRADES: clean cross-entropy plus
    beta * KL to the adversarial output). ``x`` is a tensor (moved to the model's device once) or lazily read rows
    indexable by an index tensor (read batch by batch)."""
    recipe = recipe or Recipe(epochs=epochs, batch_size=batch_size, lr=lr)
    reg = reg or Regularisers(weight_decay=weight_decay)
    device = model_device(model)
    if isinstance(x, torch.Tensor):
        x = x.to(device)
    y = y.to(device)
    layout = torch.channels_last if recipe.channels_last and len(x.shape) == 4 else None
    if layout is not None:
        model.to(memory_format=layout)
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(device), clip[1].to(device))
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = recipe.make_optimizer(model.parameters())
    if reg.weight_decay and not recipe.weight_decay:
        for group in opt.param_groups:
            group["weight_decay"] = reg.weight_decay
    fgsm_guard = overfit_guard and adversary is not None and adversary.method in ("fgsm_rs", "fgsm")
    rows, mon, monitor_label = _split(x.shape[0], recipe, seed, fgsm_guard)
    monitored = recipe.select == "best" or fgsm_guard or recipe.holdout > 0
    x_mon, y_mon = (x[mon].to(device), y[mon.to(device)]) if monitored else (None, None)
    rows_dev = rows.to(device)
    n = rows.shape[0]
    steps_per_epoch = max(1, -(-n // recipe.batch_size))
    sched = scheduler(opt, recipe, recipe.epochs * steps_per_epoch)
    passes, step, history, guard = 0, 0, [], []
    best_score, best_state, best_epoch, stopped, diverged = -1.0, None, 0, "", False
    start = time.perf_counter()
    bar = tqdm(range(recipe.epochs), desc=desc, unit="epoch", disable=None, leave=False)
    done = 0
    for _ in bar:
        order = rows_dev[torch.randperm(n, generator=gen, device=device)] if device.type != "cpu" else \
            rows[torch.randperm(n, generator=gen)]
        loss_sum = torch.zeros((), device=device)
        eps_now = None
        for i in range(0, n, recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            xb, yb = x[idx].to(device), y[idx.to(device)]
            if layout is not None:
                xb = xb.contiguous(memory_format=layout)
            if reg.input_noise > 0:
                noise = torch.randn(xb.shape, generator=gen, device=gen.device).to(device, xb.dtype)
                xb = clip_to(xb + reg.input_noise * noise, clip)
            adv = None
            if adversary is not None:
                eps_now = adversary.eps * recipe.eps_factor(step, steps_per_epoch)
                adv = adversary.at(eps_now)
            with recipe.autocast(device):
                if adv is not None and adv.method == "trades":
                    out = adv.perturb(model, xb, yb, clip, gen)
                    model.train()
                    logits = model(xb)
                    loss = F.cross_entropy(logits, yb, label_smoothing=reg.label_smoothing) + \
                        adv.beta * trades_kl(model(out.x_adv), F.softmax(logits.float(), 1)) / xb.shape[0]
                    passes += out.example_passes + xb.shape[0]
                else:
                    if adv is not None:
                        out = adv.perturb(model, xb, yb, clip, gen)
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
            sched.step()
            step += 1
            passes += xb.shape[0]
            loss_sum += loss.detach().float() * xb.shape[0]
        done += 1
        mean_loss = float(loss_sum) / n  # the epoch's one synchronisation
        if mean_loss != mean_loss or mean_loss in (float("inf"), float("-inf")):
            diverged, stopped = True, f"the training loss became non-finite at epoch {done}"
            history.append(EpochRecord(None, eps_now, None, None))
            if best_state is not None:
                model.load_state_dict(best_state)
                stopped += f"; restored epoch {best_epoch}"
            log.warning("%s: %s", desc, stopped)
            break
        bar.set_postfix(loss=f"{mean_loss:.3f}")
        if not monitored:
            history.append(EpochRecord(mean_loss, eps_now, None, None))
            continue
        clean, robust = _monitor(model, x_mon, y_mon, adversary, clip, seed + 2)
        passes += 10 * len(y_mon) if adversary is not None else 0
        history.append(EpochRecord(mean_loss, eps_now, clean, robust))
        score = robust if robust is not None else clean
        if fgsm_guard:
            guard.append(robust)
        if score > best_score:
            best_score, best_epoch = score, done
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif fgsm_guard and robust < best_score - GUARD_DROP:
            model.load_state_dict(best_state)
            stopped = (f"catastrophic overfitting at epoch {done}: PGD accuracy on the {monitor_label} fell from "
                       f"{best_score:.1%} to {robust:.1%}; restored epoch {best_epoch}")
            log.warning("%s: %s", desc, stopped)
            break
    selected = done
    if recipe.select == "best" and best_state is not None and not stopped:
        model.load_state_dict(best_state)
        selected = best_epoch
    elif stopped and best_state is not None:
        selected = best_epoch
    if layout is not None:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    stats = TrainStats(seconds=time.perf_counter() - start, epochs=done, example_passes=passes,
                       stopped_early=stopped, guard_history=tuple(guard), history=tuple(history),
                       selected_epoch=selected, diverged=diverged, monitor=monitor_label if monitored else "")
    log.info("%s: %d epochs in %.1fs", desc, done, stats.seconds)
    return stats

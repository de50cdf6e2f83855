"""Training loops: natural and adversarial training under one ``Recipe`` (attacks/recipes.py), in three parts:
the batch step (the adversarial example, the loss, the optimiser step), the epoch (the batches in a seeded order)
and the selection (the monitor set after each epoch: the best weights, divergence and the overfitting guard).

The adversarial example of each batch is generated against the current model in eval mode (the attack's mode
guard), then the model is updated on it in train mode. The inner loop never waits for the device: batches are
indexed by device tensors, random draws come from a generator on the model's device, and losses are summed on the
device and read once per epoch. After each epoch a monitor set (a held-out slice of the training data, or a 256-row
training probe) is scored clean and under PGD-10 at the full training eps: that history drives the choice of the
final weights (``select = "best"``), the catastrophic-overfitting guard (FGSM methods: stop and restore the best
epoch when PGD accuracy falls by more than 20 points) and the training-health check.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from attacks.adversaries import ADVERSARY_METHODS, Adversary, Regularisers
from attacks.base import Ball, clip_to, model_device, to_memory_format
from attacks.bound_graph import BoundGraph
from attacks.certified_training import ibp_loss, training_graph
from attacks.pgd import PGDParams, projected_gradient_descent
from attacks.recipes import Recipe, scheduler
from attacks.trades import trades_kl

log = logging.getLogger(__name__)
GUARD_DROP = 0.2
# the epoch bar's factory (tqdm's signature): tqdm's, drawn on a terminal only; a caller with its own progress
# display puts its own here (advaudit's audit/engine/record.py: audit.core.progress.bar, none under -q)
EPOCH_BAR: Callable[..., Any] = functools.partial(tqdm, disable=None)
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
    out = projected_gradient_descent(model, x, y, Ball(adversary.eps, adversary.norm, clip), PGDParams(steps=10),
                                     generator=gen)
    return clean, _accuracy(model, out.x_adv, y)


def _split(n: int, recipe: Recipe) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(training rows, monitor rows, monitor label): a held-out slice, or a training probe (no rows withheld)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(recipe.seed + 1))
    if recipe.holdout > 0 and n > 2 * recipe.holdout:
        held = perm[:recipe.holdout].sort().values
        return perm[recipe.holdout:].sort().values, held, f"held-out ({recipe.holdout} rows)"
    return torch.arange(n), perm[:PROBE_ROWS].sort().values, f"training probe ({min(n, PROBE_ROWS)} rows)"


@dataclass
class _Run:
    """The moving parts of one training run: the model and its optimiser and schedule, the recipe and adversary,
    the generator of the batch order, noise and adversary, and the counters."""

    model: torch.nn.Module
    recipe: Recipe
    adversary: Adversary | None
    clip: tuple
    device: torch.device
    layout: torch.memory_format | None
    gen: torch.Generator
    opt: torch.optim.Optimizer
    steps_per_epoch: int
    sched: torch.optim.lr_scheduler.LRScheduler | None = None  # set by ``train`` once the steps are known
    graph: BoundGraph | None = None                              # IBP training: the model's bound graph
    step: int = 0
    passes: int = 0


def _batch_step(r: _Run, xb: torch.Tensor, yb: torch.Tensor):
    """One optimiser step on a batch (adversarial when the run has an adversary): (summed loss, eps used)."""
    reg, model = r.recipe.reg, r.model
    if r.layout is not None:
        xb = xb.contiguous(memory_format=r.layout)
    if reg.input_noise > 0:
        noise = torch.randn(xb.shape, generator=r.gen, device=r.gen.device).to(r.device, xb.dtype)
        xb = clip_to(xb + reg.input_noise * noise, r.clip)
    adv = eps_now = None
    if r.adversary is not None:
        ramp = r.recipe.eps_factor(r.step, r.steps_per_epoch)
        eps_now = r.adversary.eps * ramp
        adv = r.adversary.at(eps_now)
    with r.recipe.autocast(r.device):
        if adv is not None and adv.method == "ibp":
            assert r.graph is not None, "_start traces the model for IBP training"
            model.train()
            loss = ibp_loss(model, r.graph, xb, yb, adv.eps, r.clip, ramp, reg.label_smoothing)
            r.passes += 2 * xb.shape[0]   # the lower and upper bounds: about two forwards
        elif adv is not None and adv.method == "trades":
            out = adv.perturb(model, xb, yb, r.clip, r.gen)
            model.train()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=reg.label_smoothing) + \
                adv.beta * trades_kl(model(out.x_adv), F.softmax(logits.float(), 1)) / xb.shape[0]
            r.passes += out.example_passes + xb.shape[0]
        else:
            if adv is not None:
                out = adv.perturb(model, xb, yb, r.clip, r.gen)
                xb, r.passes = out.x_adv, r.passes + out.example_passes
            model.train()
            loss = _loss(model, xb, yb, reg, r.gen)
        if reg.l1 > 0:
            loss = loss + reg.l1 * sum(p.abs().sum() for p in model.parameters() if p.requires_grad)
    r.opt.zero_grad(set_to_none=True)
    loss.backward()
    if reg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), reg.grad_clip)
    r.opt.step()
    assert r.sched is not None, "train sets the schedule before the first step"
    r.sched.step()
    r.step += 1
    r.passes += xb.shape[0]
    return loss.detach().float() * xb.shape[0], eps_now


def _epoch(r: _Run, x, y: torch.Tensor, rows: torch.Tensor, rows_dev: torch.Tensor):
    """The batches of one epoch in a seeded order: (mean training loss, the epoch's last training eps). The mean
    is the epoch's one synchronisation."""
    n, bs = rows.shape[0], r.recipe.batch_size
    order = rows_dev[torch.randperm(n, generator=r.gen, device=r.device)] if r.device.type != "cpu" else \
        rows[torch.randperm(n, generator=r.gen)]
    loss_sum = torch.zeros((), device=r.device)
    eps_now = None
    for i in range(0, n, bs):
        idx = order[i:i + bs]
        batch_loss, eps_now = _batch_step(r, x[idx].to(r.device), y[idx.to(r.device)])
        loss_sum += batch_loss
    return float(loss_sum) / n, eps_now


@dataclass
class _Selection:
    """The weights kept over the epochs: the best monitored score (robust accuracy under the adversary, else
    clean), the FGSM overfitting guard's history, and why training stopped early."""

    label: str
    guard: bool
    history: list = field(default_factory=list)
    guard_history: list = field(default_factory=list)
    best_score: float = -1.0
    best_state: dict | None = None
    best_epoch: int = 0
    stopped: str = ""
    diverged: bool = False

    def diverge(self, model, epoch: int, eps_now) -> None:
        self.diverged, self.stopped = True, f"the training loss became non-finite at epoch {epoch}"
        self.history.append(EpochRecord(None, eps_now, None, None))
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
            self.stopped += f"; restored epoch {self.best_epoch}"

    def judge(self, model, epoch: int, clean: float, robust: float | None) -> bool:
        """After a monitored epoch: keep the weights if best; True when the overfitting guard stops training."""
        score = robust if robust is not None else clean
        if self.guard:
            self.guard_history.append(robust)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif self.guard and robust is not None and robust < self.best_score - GUARD_DROP:
            model.load_state_dict(self.best_state)
            self.stopped = (f"catastrophic overfitting at epoch {epoch}: PGD accuracy on the {self.label} fell "
                            f"from {self.best_score:.1%} to {robust:.1%}; restored epoch {self.best_epoch}")
            return True
        return False

    def final(self, model, recipe: Recipe, done: int) -> int:
        """Load the kept weights; the selected epoch (1-based)."""
        if recipe.select == "best" and self.best_state is not None and not self.stopped:
            model.load_state_dict(self.best_state)
            return self.best_epoch
        return self.best_epoch if self.stopped and self.best_state is not None else done


def _start(model, x, y, recipe: Recipe, adversary: Adversary | None):
    """The run's state on the model's device: (run, x, y)."""
    device = model_device(model)
    if isinstance(x, torch.Tensor):
        x = x.to(device)
    y = y.to(device)
    layout = torch.channels_last if recipe.channels_last and len(x.shape) == 4 else None
    if layout is not None:
        to_memory_format(model, layout)
    clip = recipe.clip
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(device), clip[1].to(device))
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    opt = recipe.make_optimizer(model.parameters())
    run = _Run(model, recipe, adversary, clip, device, layout, gen, opt, 0)
    if adversary is not None and adversary.method == "ibp":
        probe = x[torch.arange(min(8, int(x.shape[0])))]
        run.graph = training_graph(model, probe.to(device) if isinstance(probe, torch.Tensor) else probe)
    return run, x, y


def train(model: torch.nn.Module, x, y: torch.Tensor, recipe: Recipe, adversary: Adversary | None = None, *,
          desc: str = "train") -> TrainStats:
    """Train ``model`` in place on (x, y) under ``recipe``; with ``adversary``, on adversarial examples (TRADES:
    clean cross-entropy plus beta * KL to the adversarial output). ``x`` is a tensor (moved to the model's device
    once) or lazily read rows indexable by an index tensor (read batch by batch)."""
    r, x, y = _start(model, x, y, recipe, adversary)
    fgsm_guard = recipe.overfit_guard and adversary is not None and adversary.method in ("fgsm_rs", "fgsm")
    rows, mon, monitor_label = _split(x.shape[0], recipe)
    monitored = recipe.select == "best" or fgsm_guard or recipe.holdout > 0
    x_mon, y_mon = (x[mon].to(r.device), y[mon.to(r.device)]) if monitored else (None, None)
    rows_dev = rows.to(r.device)
    r.steps_per_epoch = max(1, -(-rows.shape[0] // recipe.batch_size))
    r.sched = scheduler(r.opt, recipe, recipe.epochs * r.steps_per_epoch)
    sel = _Selection(monitor_label, fgsm_guard)
    start = time.perf_counter()
    bar = EPOCH_BAR(range(recipe.epochs), desc=desc, unit="epoch", leave=False)
    done = 0
    for _ in bar:
        mean_loss, eps_now = _epoch(r, x, y, rows, rows_dev)
        done += 1
        if mean_loss != mean_loss or mean_loss in (float("inf"), float("-inf")):
            sel.diverge(model, done, eps_now)
            log.warning("%s: %s", desc, sel.stopped)
            break
        bar.set_postfix(loss=f"{mean_loss:.3f}")
        if not monitored:
            sel.history.append(EpochRecord(mean_loss, eps_now, None, None))
            continue
        clean, robust = _monitor(model, x_mon, y_mon, adversary, r.clip, recipe.seed + 2)
        r.passes += 10 * len(mon) if adversary is not None else 0  # len(y_mon): one label per monitor row
        sel.history.append(EpochRecord(mean_loss, eps_now, clean, robust))
        if sel.judge(model, done, clean, robust):
            log.warning("%s: %s", desc, sel.stopped)
            break
    selected = sel.final(model, recipe, done)
    if r.layout is not None:
        to_memory_format(model, torch.contiguous_format)
    model.eval()
    stats = TrainStats(seconds=time.perf_counter() - start, epochs=done, example_passes=r.passes,
                       stopped_early=sel.stopped, guard_history=tuple(sel.guard_history),
                       history=tuple(sel.history), selected_epoch=selected, diverged=sel.diverged,
                       monitor=monitor_label if monitored else "")
    log.info("%s: %d epochs in %.1fs", desc, done, stats.seconds)
    return stats

"""What one variant is trained with: the shared budget and optimiser, the defence's adversary, warm-up,
selection and regularisers, all in one ``Recipe`` (used to train it and to fine-tune what derives from it)."""
from __future__ import annotations

import dataclasses

from attacks.recipes import Recipe, auto_warmup
from attacks.training import Adversary, Regularisers

MAX_HOLDOUT = 512


def recipe_for(config, defence, n_train: int) -> Recipe:
    """The training recipe of one variant: the shared budget and optimiser, and the defence's warm-up, selection
    and regularisers (the baseline and supplied-free natural training keep the last epoch, with nothing held
    out); the seed is the run's, the clip range the data's (``train_kwargs``)."""
    t = config.training
    base = dict(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, optimizer=t.optimizer, momentum=t.momentum,
                schedule=t.schedule, precision=t.precision,
                channels_last=t.channels_last)
    if defence is None:
        return Recipe(**base)
    adversarial = defence.method != "none"
    warmup = defence.warmup_epochs if defence.warmup_epochs is not None else (
        auto_warmup(t.epochs) if adversarial else 0.0)
    holdout = int(min(MAX_HOLDOUT, round(defence.holdout * n_train)))
    reg = Regularisers(l1=defence.l1, label_smoothing=defence.label_smoothing, mixup_alpha=defence.mixup_alpha,
                       input_noise=defence.input_noise, grad_clip=defence.grad_clip)
    return Recipe(**base, warmup_epochs=warmup, select=defence.select, holdout=holdout,
                  weight_decay=defence.weight_decay, reg=reg)


def train_kwargs(ctx, name: str, defence) -> dict:
    """The ``train`` arguments of one variant (the baseline when ``defence`` is None): its recipe (with the run's
    seed and the data's clip range), adversary and progress label."""
    adversary = None if defence is None or defence.method == "none" else \
        Adversary(defence.method, defence.eps, norm=ctx.config.attacks.norm, steps=defence.steps, beta=defence.beta)
    recipe = dataclasses.replace(recipe_for(ctx.config, defence, int(ctx.data.x_train.shape[0])),
                                 clip=ctx.data.attack_clip, seed=ctx.config.seed)
    return dict(recipe=recipe, adversary=adversary, desc=f"train {name}")

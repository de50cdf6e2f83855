"""The audited variants: the baseline (the user's trained model, or trained here) and each configured defence,
trained from the same factory, seed and budget, or a defended checkpoint the user supplied."""
from __future__ import annotations

from pathlib import Path

from attacks.recipes import Recipe, auto_warmup
from attacks.training import Adversary, Regularisers, train
from audit.engine.context import Context, Variant
from audit.models.loading import apply_weights, build_from_factory, read_state_dict


def supplied_checkpoint(ctx: Context, defence) -> Variant:
    m = ctx.config.model
    path = Path(defence.weights)
    module = apply_weights(build_from_factory(m.factory, dict(m.kwargs), ctx.config.base_dir or None),
                           read_state_dict(path, m.trust_pickle), path)
    return Variant(defence.name, defence.describe(), ctx.wrap(module).eval(), defence, None)


MAX_HOLDOUT = 512


def recipe_for(config, defence, n_train: int) -> Recipe:
    """The training recipe of one variant: the shared budget and optimiser, and the defence's warm-up and
    selection (the baseline and supplied-free natural training keep the last epoch, with nothing held out)."""
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
    return Recipe(**base, warmup_epochs=warmup, select=defence.select, holdout=holdout)


def train_variant(ctx: Context, name: str, description: str, defence) -> Variant:
    adversary = None if defence is None or defence.method == "none" else \
        Adversary(defence.method, defence.eps, norm=ctx.config.attacks.norm, steps=defence.steps, beta=defence.beta)
    reg = Regularisers() if defence is None else Regularisers(
        weight_decay=defence.weight_decay, l1=defence.l1, label_smoothing=defence.label_smoothing,
        mixup_alpha=defence.mixup_alpha, input_noise=defence.input_noise, grad_clip=defence.grad_clip)
    recipe = recipe_for(ctx.config, defence, int(ctx.data.x_train.shape[0]))
    with ctx.seeded():
        model = ctx.build_model()
        stats = train(model, ctx.data.x_train, ctx.data.y_train, recipe=recipe, adversary=adversary,
                      clip=ctx.data.attack_clip, seed=ctx.config.seed, desc=f"train {name}", reg=reg)
    if stats.stopped_early:
        ctx.warnings.append(f"{name}: {stats.stopped_early}")
        description += f" (stopped early: {stats.stopped_early})"
    return Variant(name, description, model, defence, stats)


def train_variants(ctx: Context) -> None:
    """Fill ``ctx.variants`` in config order: the baseline, then every defence."""
    user = ctx.user_model
    if user is not None and user.pretrained:
        ctx.variants["baseline"] = Variant("baseline", f"the model as supplied ({user.source})",
                                           ctx.wrap(user.module).eval(), None, None)
    else:
        with ctx.stage("train baseline"):
            ctx.variants["baseline"] = train_variant(ctx, "baseline", "natural training (no defence)", None)
    for d in ctx.config.defences:
        with ctx.stage(f"{'load' if d.weights else 'train'} {d.name}"):
            ctx.variants[d.name] = supplied_checkpoint(ctx, d) if d.weights else train_variant(ctx, d.name,
                                                                                              d.describe(), d)

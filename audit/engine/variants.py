"""The audited variants: the baseline (the user's trained model, or trained here) and each configured defence,
trained from the same factory, seed and budget, or a defended checkpoint the user supplied."""
from __future__ import annotations

from pathlib import Path

from attacks.recipes import Recipe, auto_warmup
from attacks.training import Adversary, Regularisers
from audit.core.units import Unit
from audit.engine.context import Context, Variant
from audit.methods.units import train_unit
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


def train_kwargs(ctx: Context, name: str, defence) -> dict:
    """The ``train`` arguments of one variant (the baseline when ``defence`` is None): recipe, adversary,
    regularisers."""
    adversary = None if defence is None or defence.method == "none" else \
        Adversary(defence.method, defence.eps, norm=ctx.config.attacks.norm, steps=defence.steps, beta=defence.beta)
    reg = Regularisers() if defence is None else Regularisers(
        weight_decay=defence.weight_decay, l1=defence.l1, label_smoothing=defence.label_smoothing,
        mixup_alpha=defence.mixup_alpha, input_noise=defence.input_noise, grad_clip=defence.grad_clip)
    recipe = recipe_for(ctx.config, defence, int(ctx.data.x_train.shape[0]))
    return dict(recipe=recipe, adversary=adversary, clip=ctx.data.attack_clip, seed=ctx.config.seed,
                desc=f"train {name}", reg=reg)


def _train_job(ctx: Context, name: str, defence) -> Unit:
    """The unit that trains one variant from the run's seed."""
    kw = train_kwargs(ctx, name, defence)
    return Unit(f"train {name}", train_unit, (ctx.model_spec(), ctx.seed_of(0), ctx.share(ctx.data.x_train),
                                             ctx.share(ctx.data.y_train), kw))


def _variant(ctx: Context, name: str, description: str, defence, state: dict, stats) -> Variant:
    with ctx.seeded():
        model = ctx.build_model()
    model.load_state_dict(state)
    if stats.stopped_early:
        ctx.warnings.append(f"{name}: {stats.stopped_early}")
        description += f" (stopped early: {stats.stopped_early})"
    return Variant(name, description, model.eval(), defence, stats)


def train_variants(ctx: Context) -> None:
    """Fill ``ctx.variants`` in config order: the baseline, then every defence. The trainings are independent
    units of the run's executor (each from the same seed, as if trained alone)."""
    user = ctx.user_model
    pretrained = user is not None and user.pretrained
    todo = ([] if pretrained else [("baseline", "natural training (no defence)", None)]) + \
        [(d.name, d.describe(), d) for d in ctx.config.defences if not d.weights]
    trained = dict(zip([t[0] for t in todo], ctx.run_units([_train_job(ctx, n, d) for n, _, d in todo])))
    if pretrained:
        ctx.variants["baseline"] = Variant("baseline", f"the model as supplied ({user.source})",
                                           ctx.wrap(user.module).eval(), None, None)
    else:
        ctx.variants["baseline"] = _variant(ctx, "baseline", todo[0][1], None, *trained["baseline"])
    for d in ctx.config.defences:
        if d.weights:
            with ctx.stage(f"load {d.name}"):
                ctx.variants[d.name] = supplied_checkpoint(ctx, d)
        else:
            ctx.variants[d.name] = _variant(ctx, d.name, d.describe(), d, *trained[d.name])

"""The audited variants: the baseline (the user's trained model, or trained here) and each configured defence,
trained from the same factory, seed and budget, or a defended checkpoint the user supplied."""
from __future__ import annotations

from pathlib import Path

from audit.core.work import Unit
from audit.engine.context import Context, Variant
from audit.engine.variant_recipe import train_kwargs
from audit.methods.jobs import train_unit
from audit.models.loading import apply_weights, build_from_factory, read_state_dict


def supplied_checkpoint(ctx: Context, defence) -> Variant:
    m = ctx.config.model
    path = Path(defence.weights)
    module = apply_weights(build_from_factory(m.factory, dict(m.kwargs), ctx.config.base_dir or None),
                           read_state_dict(path, m.trust_pickle), path)
    return Variant(defence.name, defence.describe(), ctx.wrap(module).eval(), defence, None)


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
    trained = dict(zip([t[0] for t in todo], ctx.run_units([_train_job(ctx, n, d) for n, _, d in todo]), strict=False))
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

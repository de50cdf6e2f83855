"""The audited variants: the baseline (the user's trained model, or trained here) and each configured defence,
trained from the same factory, seed and budget, or a defended checkpoint the user supplied."""
from __future__ import annotations

from pathlib import Path

from audit.core.work import Unit
from audit.engine.context import Prepared
from audit.engine.models import Models, Variant
from audit.engine.variant_recipe import train_kwargs
from audit.methods.jobs import train_unit
from audit.methods.seeding import TRAIN, seeded
from audit.models.loading import apply_weights, build_from_factory, read_state_dict


def supplied_checkpoint(models: Models, defence) -> Variant:
    m, base_dir = models.setup.config.model, models.setup.config.base_dir
    path = Path(defence.weights)
    module = apply_weights(build_from_factory(m.factory, dict(m.kwargs), Path(base_dir) if base_dir else None),
                           read_state_dict(path, m.trust_pickle), path)
    return Variant(defence.name, defence.describe(), models.wrap(module).eval(), defence, None)


def _train_job(run: Prepared, name: str, defence) -> Unit:
    """The unit that trains one variant from the run's seed."""
    setup, share = run.setup, run.executor.share
    kw = train_kwargs(setup, name, defence)
    return Unit(f"train {name}", train_unit, (run.models.spec(), TRAIN.seed(setup.config.seed),
                                             share(setup.data.x_train), share(setup.data.y_train), kw))


def _variant(run: Prepared, name: str, description: str, defence, trained: tuple, warnings: list[str]) -> Variant:
    state, stats = trained
    with seeded(TRAIN.seed(run.setup.config.seed)):
        model = run.models.build_model()
    model.load_state_dict(state)
    if stats.stopped_early:
        warnings.append(f"{name}: {stats.stopped_early}")
        description += f" (stopped early: {stats.stopped_early})"
    return Variant(name, description, model.eval(), defence, stats)


def train_variants(run: Prepared) -> tuple[dict[str, Variant], tuple[str, ...]]:
    """The variants in config order: the baseline, then every defence, and the warnings of their training. The
    trainings are independent units of the run's executor (each from the same seed, as if trained alone)."""
    user, defences = run.setup.user_model, run.setup.config.defences
    pretrained = user is not None and user.pretrained
    todo = ([] if pretrained else [("baseline", "natural training (no defence)", None)]) + \
        [(d.name, d.describe(), d) for d in defences if not d.weights]
    done = run.executor.map([_train_job(run, n, d) for n, _, d in todo])
    trained = dict(zip([t[0] for t in todo], done, strict=False))
    variants: dict[str, Variant] = {}
    warnings: list[str] = []
    if pretrained and user is not None:
        assert user.module is not None   # a pretrained model is loaded with its module
        variants["baseline"] = Variant("baseline", f"the model as supplied ({user.source})",
                                       run.models.wrap(user.module).eval(), None, None)
    else:
        variants["baseline"] = _variant(run, "baseline", todo[0][1], None, trained["baseline"], warnings)
    for d in defences:
        if d.weights:
            with run.recorder.stage(f"load {d.name}"):
                variants[d.name] = supplied_checkpoint(run.models, d)
        else:
            variants[d.name] = _variant(run, d.name, d.describe(), d, trained[d.name], warnings)
    return variants, tuple(warnings)

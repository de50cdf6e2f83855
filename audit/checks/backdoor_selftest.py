"""The backdoor check's self-test: each configured pattern (all-to-all, all-to-one) planted in a copy of the training
split, the audited architecture trained on each copy (independent units of the run's executor), and the screen run
on each model's activations, measured row by row and class by class (audit/checks/backdoor.py describes it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks.base import frozen_eval
from audit.checks.base import AuditContext
from audit.config.data_checks import BackdoorConfig
from audit.core.work import Unit
from audit.data.rows import batches
from audit.methods.backdoor import (
    PATTERNS,
    Screen,
    add_trigger,
    auroc,
    class_rates,
    poison_plan,
    rates,
    recall_at_fpr,
    screen,
)
from audit.methods.jobs import train_unit
from audit.methods.seeding import BACKDOOR_SELFTEST, seeded
from audit.models.embeddings import last_linear, penultimate


@dataclass(frozen=True)
class DetectorRates:
    recall: float | None                 # None when nothing was planted
    false_positive_rate: float | None
    flagged: int


@dataclass(frozen=True)
class Ranking:
    auroc: float | None
    recall_at_10pct_fpr: float | None


@dataclass(frozen=True)
class BackdoorSelfTest:
    """One planted pattern. ``class_recall``: share of the poisoned classes the screen calls suspicious;
    ``class_false_positive_rate``: share of the untouched classes it does (None: no such class, as all-to-all)."""

    rate: float
    poisoned_rows: int
    rows: int
    trigger: str
    trigger_value: float
    epochs: int
    attack_success_rate: float | None
    clean_accuracy: float
    detectors: dict[str, DetectorRates]   # "activation_clustering", "centroid_ratio", "spectral_signature",
    #                                       "neighbour_labels", "screen"
    ranking: dict[str, Ranking]           # "centroid_ratio", "spectral_signature", "screen_score"
    classes_flagged: tuple[str, ...]
    note: str
    pattern: str = "all-to-all"
    poisoned_classes: tuple[str, ...] = ()
    class_recall: float | None = None
    class_false_positive_rate: float | None = None


def _finite(v: float | None) -> float | None:
    return None if v is None or v != v else float(v)


def _trigger_value(ctx: AuditContext) -> float:
    if ctx.data.kind == "image":
        hi = ctx.data.attack_clip[1]
        return float(hi.max()) if isinstance(hi, torch.Tensor) else float(hi)
    return float(ctx.data.x_train.max())


def _detector_rates(flag: np.ndarray, truth: np.ndarray) -> DetectorRates:
    r = rates(flag, truth)
    return DetectorRates(recall=_finite(r["recall"]), false_positive_rate=_finite(r["false_positive_rate"]),
                         flagged=int(r["flagged"]))


@dataclass(frozen=True)
class _Planted:
    """A poisoned copy of the training split: inputs, labels, which rows carry the trigger, and its targets."""

    pattern: str
    seed: int
    x: np.ndarray
    y: np.ndarray
    truth: np.ndarray
    target: int | None      # all-to-one: the target class


def _plant(ctx: AuditContext, cfg: BackdoorConfig, pattern: str, value: float) -> _Planted:
    d = ctx.data
    y = d.y_train.numpy()
    seed = BACKDOOR_SELFTEST.seed(ctx.config.seed, PATTERNS.index(pattern))
    target = int(np.random.default_rng(seed).integers(d.num_classes)) if pattern == "all-to-one" else None
    rows, new_labels = poison_plan(y, d.num_classes, cfg.selftest_rate, seed, pattern, target)
    x = d.x_train.numpy().copy()
    x[rows] = add_trigger(x[rows], d.kind, value)
    yp = y.copy()
    yp[rows] = new_labels
    truth = np.zeros(len(y), dtype=bool)
    truth[rows] = True
    return _Planted(pattern=pattern, seed=seed, x=x, y=yp, truth=truth, target=target)


def _train(ctx: AuditContext, planted: list[_Planted], epochs: int) -> list[torch.nn.Module]:
    """The audited architecture trained on each poisoned copy (independent units of the run's executor)."""
    t = ctx.config.training
    units = [Unit(f"train the backdoored copy ({p.pattern})", train_unit,
                  (ctx.models.spec(), p.seed, torch.from_numpy(p.x), torch.from_numpy(p.y),
                   dict(epochs=epochs, batch_size=t.batch_size, lr=t.lr, seed=p.seed,
                        desc=f"backdoor self-test ({p.pattern})")))
             for p in planted]
    models = []
    for p, (state, _) in zip(planted, ctx.run_units(units), strict=True):
        with seeded(p.seed):
            model = ctx.models.build_model()
        model.load_state_dict(state)
        models.append(model.eval())
    return models


@torch.no_grad()
def embed_and_predict(model: torch.nn.Module, x: torch.Tensor, *, device: torch.device,
                      batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The penultimate embeddings of the rows of ``x`` (as ``penultimate`` reads them: the input of the last
    ``nn.Linear``, same batches) and the model's predicted class of each, from one pass (the held-out rows'
    embeddings and the clean accuracy need the same forward)."""
    layer = last_linear(model)
    assert layer is not None   # the baseline's architecture, whose embeddings exist
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0].detach().flatten(1).float().cpu()))
    emb, pred = [], []
    try:
        with frozen_eval(model):
            for _, xb in batches(x, batch_size):
                captured.clear()
                pred.append(model(xb.to(device)).float().argmax(1).cpu())
                emb.append(captured[-1])
    finally:
        handle.remove()
    return torch.cat(emb), torch.cat(pred)


def _attack_success(ctx: AuditContext, model: torch.nn.Module, p: _Planted, value: float) -> float | None:
    """Share of the triggered test rows (of the poisoned source classes) the model gives the planted target."""
    d = ctx.data
    yt = d.y_test.numpy()
    k = d.num_classes
    if k < 2:
        return None
    keep = yt != p.target if p.target is not None else np.ones(len(yt), dtype=bool)
    if not keep.any():
        return None
    xt = add_trigger(d.x_test.numpy()[keep], d.kind, value)
    pred = ctx.logits(model, torch.from_numpy(xt)).argmax(1).numpy()
    goal = np.full(int(keep.sum()), p.target) if p.target is not None else (yt[keep] + 1) % k
    return float((pred == goal).mean())


def _measure(ctx: AuditContext, cfg: BackdoorConfig, p: _Planted, model: torch.nn.Module, value: float,
             epochs: int) -> BackdoorSelfTest:
    d = ctx.data
    with ctx.stage(f"backdoor: self-test embeddings ({p.pattern})"):
        emb = penultimate(model, torch.from_numpy(p.x), device=ctx.device)
        held, clean_pred = embed_and_predict(model, d.x_test, device=ctx.device)
    assert emb is not None   # the baseline's architecture, whose embeddings exist
    with ctx.stage(f"backdoor: self-test attack success ({p.pattern})"):
        asr = _attack_success(ctx, model, p, value)
    with ctx.stage(f"backdoor: self-test screen ({p.pattern})"):
        s = screen(emb.numpy(), p.y, cfg, ctx.config.seed, stage=ctx.stage, heldout=(held.numpy(), d.y_test.numpy()))
        return _result(ctx, cfg, p, s, asr=asr, clean_accuracy=float((clean_pred.numpy() == d.y_test.numpy()).mean()),
                       value=value, epochs=epochs)


def _result(ctx: AuditContext, cfg: BackdoorConfig, p: _Planted, s: Screen, *, asr: float | None,
            clean_accuracy: float, value: float, epochs: int) -> BackdoorSelfTest:
    """The screen of a poisoned copy measured against its planted rows and classes."""
    d = ctx.data
    poisoned = sorted(set(p.y[p.truth].tolist()))
    cr = class_rates(s.suspicious_classes, poisoned, list(range(d.num_classes)))
    truth = p.truth
    ranking = {name: Ranking(auroc=_finite(auroc(score, truth)),
                             recall_at_10pct_fpr=_finite(recall_at_fpr(score, truth, 0.1)))
               for name, score in (("centroid_ratio", s.ratio), ("spectral_signature", s.spectral),
                                   ("screen_score", s.score))}
    image = d.kind == "image" and p.x.ndim == 4
    planted = ("class t-1 with the trigger relabelled t" if p.target is None
               else f"rows of every other class with the trigger relabelled {d.class_names[p.target]}")
    return BackdoorSelfTest(
        pattern=p.pattern, rate=cfg.selftest_rate, poisoned_rows=int(truth.sum()), rows=int(len(p.y)),
        trigger="ART add_pattern_bd (corner pattern, every channel)" if image
        else "last 3 features set to the training maximum", trigger_value=value, epochs=epochs,
        attack_success_rate=asr, clean_accuracy=clean_accuracy,
        detectors={name: _detector_rates(flag, truth) for name, flag in s.detectors().items()}, ranking=ranking,
        classes_flagged=tuple(d.class_names[c] for c in s.suspicious_classes),
        poisoned_classes=tuple(d.class_names[c] for c in poisoned), class_recall=_finite(cr["recall"]),
        class_false_positive_rate=_finite(cr["false_positive_rate"]),
        note=f"{p.pattern} backdoor ({planted}) in a copy of the training split; row recall on the planted rows, "
             f"false-positive rate on the copy's untouched rows; class recall on the classes given planted rows, "
             f"class false-positive rate on the others")


def self_test(ctx: AuditContext, cfg: BackdoorConfig) -> tuple[BackdoorSelfTest, ...]:
    """Plant each pattern of ``cfg.selftest_patterns`` in a copy of the training split, train the architecture on
    it, screen it."""
    value = _trigger_value(ctx)
    epochs = cfg.selftest_epochs or ctx.config.training.epochs
    with ctx.stage("backdoor: self-test poisoning"):
        planted = [_plant(ctx, cfg, pattern, value) for pattern in cfg.selftest_patterns]
    with ctx.stage("backdoor: self-test training"):
        models = _train(ctx, planted, epochs)
    return tuple(_measure(ctx, cfg, p, model, value, epochs) for p, model in zip(planted, models, strict=True))

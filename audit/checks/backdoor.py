"""Backdoor screening of the training data on the baseline's penultimate-layer activations, with a self-test that
plants a known backdoor in a copy of the user's data and measures each detector's recall and false-positive rate.

Label-issue and duplicate detectors do not see backdoor poisons: their labels look right to a model that learnt
the trigger (REFERENCE section 6). The detectors (audit/methods/backdoor.py) are activation clustering through
ART's ActivationDefence with an analysis that does not flag clean classes, a centroid-distance ratio, and a centred
spectral-signature score. Evidence for NIST AI 100-2 §2.3.3 (backdoor poisoning; training-data sanitisation),
MITRE ATLAS AML.M0007 / AML.M0008, EU AI Act Art. 15(5).

Self-test: ART's all-to-all convention (rows of class t-1 carry the trigger and are relabelled t, making ``rate``
of each class t), the trigger ART's ``add_pattern_bd`` (images) or fixed values in the last features (tables);
the audited architecture is trained on the poisoned copy with the run's budget, the attack success rate on the
triggered test split shows the backdoor took, and the same screen runs on that model's activations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, CostSheet, RunCheck, controls, register, settings
from audit.checks.run_view import TrainEmbeddings, embedding_unavailable
from audit.config.data_checks import BackdoorConfig
from audit.core.result import Details, Finding, Measurement, Status
from audit.core.work import Unit
from audit.methods.backdoor import add_trigger, auroc, poison_plan, rates, recall_at_fpr, screen
from audit.methods.jobs import train_unit
from audit.methods.seeding import BACKDOOR_SELFTEST, seeded
from audit.models.embeddings import penultimate

MAX_LISTED = 25
SETTINGS = ("ratio_z", "spectral_z", "min_silhouette", "max_cluster_share", "min_cluster_ratio_z", "nb_dims")


@dataclass(frozen=True)
class ClassScreen:
    """Activation clustering of one class (the cluster fields are absent when the class could not be split)."""

    label: str
    rows: int
    flagged: bool
    reason: str = ""
    small_cluster_share: float | None = None
    silhouette: float | None = None
    small_cluster_ratio_z: float | None = None
    small_cluster_rows: int | None = None
    nearest_other_class: int | None = None
    distance_ratio_to_it: float | None = None


@dataclass(frozen=True)
class ScreenedRow:
    row: int
    ratio_z: float
    spectral_z: float
    clustered: bool
    label: str = ""


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
    rate: float
    poisoned_rows: int
    rows: int
    trigger: str
    trigger_value: float
    epochs: int
    attack_success_rate: float | None
    clean_accuracy: float
    detectors: dict[str, DetectorRates]   # "activation_clustering", "centroid_ratio", "spectral_signature", "screen"
    ranking: dict[str, Ranking]           # "centroid_ratio", "spectral_signature", "screen_score"
    classes_flagged: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class BackdoorDetails(Details):
    rows: int
    dimensions: int
    model: str
    settings: dict[str, float]
    classes: tuple[ClassScreen, ...]
    suspicious_classes: tuple[str, ...]
    detector_flags: dict[str, int]
    top_rows: tuple[ScreenedRow, ...]
    flagged: tuple[ScreenedRow, ...]
    selftest: BackdoorSelfTest | None = None
    selftest_skipped: str = ""


def _finite(v: float) -> float | None:
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


def _class_rows(raw: list[dict], names) -> tuple[ClassScreen, ...]:
    return tuple(ClassScreen(**{("label" if k == "class" else k): (names[v] if k == "class" else v)
                                for k, v in c.items()}) for c in raw)


def self_test(ctx: AuditContext) -> BackdoorSelfTest:
    """Plant an all-to-all backdoor in a copy of the training split, train the architecture on it, screen it."""
    cfg = settings(Backdoor, ctx.config)
    d = ctx.data
    k = d.num_classes
    y = d.y_train.numpy()
    rows, new_labels = poison_plan(y, k, cfg.selftest_rate, BACKDOOR_SELFTEST.seed(ctx.config.seed))
    value = _trigger_value(ctx)
    x = d.x_train.numpy().copy()
    x[rows] = add_trigger(x[rows], d.kind, value)
    yp = y.copy()
    yp[rows] = new_labels
    truth = np.zeros(len(y), dtype=bool)
    truth[rows] = True
    t = ctx.config.training
    epochs = cfg.selftest_epochs or t.epochs
    kw = dict(epochs=epochs, batch_size=t.batch_size, lr=t.lr, seed=BACKDOOR_SELFTEST.seed(ctx.config.seed),
              desc="backdoor self-test")
    (state, _), = ctx.run_units([Unit("train the backdoored copy", train_unit,
                                      (ctx.models.spec(), BACKDOOR_SELFTEST.seed(ctx.config.seed), torch.from_numpy(x),
                                       torch.from_numpy(yp), kw))])
    with seeded(BACKDOOR_SELFTEST.seed(ctx.config.seed)):
        model = ctx.models.build_model()
    model.load_state_dict(state)
    model.eval()
    # attack success: test rows of each source class, triggered, predicted as that class's target
    yt = d.y_test.numpy()
    xt = add_trigger(d.x_test.numpy(), d.kind, value)
    pred = ctx.logits(model, torch.from_numpy(xt)).argmax(1).numpy()
    clean_pred = ctx.logits(model, d.x_test).argmax(1).numpy()
    asr = float((pred == (yt + 1) % k).mean()) if k > 1 else None
    emb = penultimate(model, torch.from_numpy(x), device=ctx.device)
    assert emb is not None   # the same architecture as the baseline, whose embeddings exist (embedding_unavailable)
    e = emb.numpy()
    s = screen(e, yp, cfg, ctx.config.seed)
    detectors = {name: _detector_rates(flag, truth) for name, flag in s.detectors().items()}
    ranking = {name: Ranking(auroc=_finite(auroc(score, truth)),
                             recall_at_10pct_fpr=_finite(recall_at_fpr(score, truth, 0.1)))
               for name, score in (("centroid_ratio", s.ratio), ("spectral_signature", s.spectral),
                                   ("screen_score", s.score))}
    return BackdoorSelfTest(
        rate=cfg.selftest_rate, poisoned_rows=int(truth.sum()), rows=int(len(y)),
        trigger="ART add_pattern_bd (corner pattern, every channel)" if d.kind == "image" and x.ndim == 4
        else "last 3 features set to the training maximum", trigger_value=value, epochs=epochs,
        attack_success_rate=asr, clean_accuracy=float((clean_pred == yt).mean()), detectors=detectors,
        ranking=ranking, classes_flagged=tuple(d.class_names[c["class"]] for c in s.classes if c["flagged"]),
        note="all-to-all backdoor (class t-1 with the trigger relabelled t) in a copy of the training split; recall "
             "on the planted rows, false-positive rate on the copy's untouched rows")


@register
class Backdoor(RunCheck):
    id = "backdoor"
    rank = 150
    title = "Backdoor screening (activation clustering, centroid ratio, spectral signature)"
    controls = controls(MEASURE_2_7="direct", MAP_2_3="supporting", MEASURE_2_5="supporting",
                        MEASURE_1_2="supporting")
    description = ("Per-class screening of the baseline's penultimate activations: ART ActivationDefence clustering "
                   "(seeded, an analysis that leaves clean classes alone), a centroid-distance ratio and a centred "
                   "spectral signature; a self-test that plants a pattern backdoor in a copy of the data.")
    Details = BackdoorDetails
    Config = BackdoorConfig   # its [checks.backdoor] table (in the config room: audit/methods uses it too)
    triage_columns = ("backdoor_ratio_z", "backdoor_spectral_z", "backdoor_clustered")

    def triage(self, details: BackdoorDetails, row) -> None:
        for p in details.flagged:
            row("train", p.row).update(backdoor_ratio_z=p.ratio_z, backdoor_spectral_z=p.spectral_z,
                                       backdoor_clustered=p.clustered)

    def residual_risk(self, finding: Finding) -> str:
        if "flagged_rows" not in finding.metrics:
            return ""
        test = finding.details.selftest
        recall = test.detectors["screen"].recall if test else None
        evidence = (f"; its self-test found {recall:.0%} of a planted {test.rate:.0%} backdoor, so a backdoor "
                    f"it misses remains possible") if recall is not None else ""
        return f"The backdoor screen flagged {int(finding.metrics['flagged_rows'])} training rows for review{evidence}."

    def cost(self, sheet: CostSheet) -> None:
        if sheet.trainable:
            epochs = settings(self, sheet.config).selftest_epochs or sheet.config.training.epochs
            sheet.add(f"check {self.id} (self-test training)", epochs * sheet.n_train, 2.0 * sheet.n_train,
                      train=True)

    def measure(self, ctx: AuditContext) -> Measurement:
        cfg = settings(self, ctx.config)
        d = ctx.data
        why = embedding_unavailable(ctx)
        if why:
            return Measurement(check=self.id, skipped=why)
        if d.num_classes < 2:
            return Measurement(check=self.id, skipped="one class: a backdoor needs a target class")
        e = ctx.get(TrainEmbeddings)
        assert e is not None   # embedding_unavailable returned '' above
        y = d.y_train.numpy()
        s = screen(e, y, cfg, ctx.config.seed)
        names = d.class_names
        flagged = s.flagged
        order = np.argsort(-s.score)
        classes = _class_rows(s.classes, names)
        suspicious = tuple(c.label for c in classes if c.flagged)

        def row(i, label=False):
            return ScreenedRow(row=int(i), ratio_z=round(float(s.ratio_z[i]), 3),
                               spectral_z=round(float(s.spectral_z[i]), 3), clustered=bool(s.clustered[i]),
                               label=names[y[i]] if label else "")
        rate = float(flagged.mean())
        metrics: dict[str, float | None] = {"backdoor_flag_rate": rate, "suspicious_classes": float(len(suspicious)),
                                            "flagged_rows": float(flagged.sum())}
        at_best, selftest = None, None
        summary = (f"{int(flagged.sum())} of {len(y)} training rows flagged ({rate:.1%}); "
                   f"{len(suspicious)} class(es) with a suspicious activation cluster"
                   + (f" ({', '.join(suspicious)})" if suspicious else ""))
        why_no_test = self._why_no_self_test(ctx)
        if not why_no_test:
            selftest = self_test(ctx)
            r = selftest.detectors["screen"]
            asr = selftest.attack_success_rate
            metrics.update(selftest_recall=r.recall, selftest_false_positive_rate=r.false_positive_rate,
                           selftest_attack_success_rate=asr)
            if r.recall is None or asr is None:
                at_best = Status.WARN
                summary += "; self-test inconclusive: no training row could carry the planted backdoor"
            else:
                summary += (f"; self-test with a {selftest.rate:.0%} pattern backdoor (attack success {asr:.0%}): "
                            f"recall {r.recall:.0%} at false-positive rate {r.false_positive_rate:.1%}")
            if at_best is not None:
                pass
            elif asr < cfg.min_attack_success:
                at_best = Status.WARN
                summary += " (the planted backdoor did not take; the self-test is inconclusive)"
            elif r.recall < cfg.min_selftest_recall:
                at_best = Status.WARN
                summary = "SCREEN WEAK ON THIS DATA: " + summary
        details = BackdoorDetails(
            rows=int(len(y)), dimensions=int(e.shape[1]), model="baseline (penultimate layer)",
            settings={k: float(getattr(cfg, k)) for k in SETTINGS}, classes=classes, suspicious_classes=suspicious,
            detector_flags={k: int(v.sum()) for k, v in s.detectors().items()},
            top_rows=tuple(row(i, label=True) for i in order[:MAX_LISTED] if flagged[i]),
            flagged=tuple(row(i) for i in np.flatnonzero(flagged)), selftest=selftest, selftest_skipped=why_no_test)
        return Measurement(check=self.id, metrics={k: v for k, v in metrics.items() if v is not None},
                           details=details, summary=summary, at_best=at_best)

    def _why_no_self_test(self, ctx: AuditContext) -> str:
        if settings(self, ctx.config).selftest_rate <= 0:
            return "backdoor.selftest_rate = 0"
        if not ctx.can_train:
            return "the self-test trains the architecture on a poisoned copy; an archive cannot be retrained"
        if ctx.data.lazy:
            return "the data is read lazily; the self-test needs an in-memory poisoned copy"
        if ctx.data.num_classes < 2:
            return "one class"
        return ""

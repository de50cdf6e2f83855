"""Backdoor screening of the training data on the baseline's penultimate-layer activations, with a self-test that
plants known backdoors in copies of the user's data and measures each detector's recall and false-positive rate,
row by row and class by class.

Label-issue and duplicate detectors do not see backdoor poisons: their labels look right to a model that learnt
the trigger (REFERENCE section 6). The detectors (audit/methods/backdoor.py) are activation clustering through
ART's ActivationDefence with an analysis that does not flag clean classes, a centroid-distance ratio, a centred
spectral-signature score and the labels of each row's nearest neighbours; a class is suspicious on absolute
criteria (a separated cluster the ratio agrees with, or rows among many other classes), so the class flags hold on
an all-to-all backdoor, where every class is poisoned, as on an all-to-one. Evidence for NIST AI 100-2 §2.3.3
(backdoor poisoning; training-data sanitisation), MITRE ATLAS AML.M0007 / AML.M0008, EU AI Act Art. 15(5).

Self-test, for each of ``selftest_patterns``: all-to-all (ART's convention: rows of class t-1 carry the trigger
and are relabelled t, making ``rate`` of each class t) or all-to-one (rows of every other class relabelled one
seeded target class, making ``rate`` of it); the trigger ART's ``add_pattern_bd`` (images) or fixed values in the
last features (tables). The audited architecture is trained on each poisoned copy with the run's budget, the
attack success rate on the triggered test split shows the backdoor took, and the same screen runs on that model's
activations (audit/checks/backdoor_selftest.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.checks.backdoor_selftest import BackdoorSelfTest, DetectorRates, Ranking, self_test
from audit.checks.base import AuditContext, CostSheet, RunCheck, controls, register, settings
from audit.checks.run_view import NO_EMBEDDINGS, TestEmbeddings, TrainEmbeddings, embedding_unavailable
from audit.config.data_checks import BackdoorConfig
from audit.core.result import Details, Finding, Measurement, Status
from audit.methods.backdoor import screen

__all__ = ["Backdoor", "BackdoorDetails", "BackdoorSelfTest", "ClassScreen", "DetectorRates", "Ranking",
           "ScreenedRow"]

MAX_LISTED = 25
SETTINGS = ("ratio_z", "spectral_z", "min_silhouette", "min_cluster_share", "max_cluster_share",
            "min_cluster_agreement", "heldout_p", "nb_dims", "neighbours", "neighbour_share", "neighbour_excess",
            "neighbour_classes")


@dataclass(frozen=True)
class ClassScreen:
    """One class of the screen: the cluster it is judged on (absent when none of a plausible poison share split
    off), the share of its rows flagged by their neighbours' labels and the classes those neighbours carry, and the
    evidence that makes it suspicious ("cluster", "neighbour labels", both, or "")."""

    label: str
    rows: int
    flagged: bool
    evidence: str = ""
    reason: str = ""
    flagged_rows: int = 0                  # rows of the class the row screen flags
    clusters: int | None = None            # the k-means split the cluster comes from (2 or 3 clusters)
    small_cluster_share: float | None = None
    small_cluster_rows: int | None = None
    silhouette: float | None = None        # the cluster's rows against the rest of the class
    cluster_agreement: float | None = None  # share of the cluster's rows the centroid ratio flags
    heldout_rows: int | None = None        # held-out (test) rows of the class nearest to the cluster
    heldout_expected: float | None = None  # as many as its training share predicts
    heldout_p: float | None = None         # one-sided binomial p-value of so few
    small_cluster_ratio_z: float | None = None
    nearest_other_class: str | None = None  # the class the cluster moved towards
    distance_ratio_to_it: float | None = None
    neighbour_share: float = 0.0
    neighbour_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScreenedRow:
    row: int
    ratio_z: float
    spectral_z: float
    clustered: bool
    label: str = ""


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
    selftests: tuple[BackdoorSelfTest, ...] = ()   # one per planted pattern, in ``selftest_patterns`` order
    selftest_skipped: str = ""

    @property
    def selftest(self) -> BackdoorSelfTest | None:
        """The first planted pattern's self-test (all-to-all by default), or None."""
        return self.selftests[0] if self.selftests else None


def _class_rows(raw: list[dict], names) -> tuple[ClassScreen, ...]:
    out = []
    for c in raw:
        row = {k: v for k, v in c.items() if k != "class"}
        near = row.get("nearest_other_class")
        if near is not None:
            row["nearest_other_class"] = names[near] if near >= 0 else None
        row["neighbour_classes"] = tuple(names[k] for k in row.get("neighbour_classes", ()))
        out.append(ClassScreen(label=names[c["class"]], **row))
    return tuple(out)


@register
class Backdoor(RunCheck):
    id = "backdoor"
    rank = 150
    title = "Backdoor screening (activation clustering, centroid ratio, spectral signature, neighbour labels)"
    controls = controls(MEASURE_2_7="direct", MAP_2_3="supporting", MEASURE_2_5="supporting",
                        MEASURE_1_2="supporting")
    description = ("Per-class screening of the baseline's penultimate activations: ART ActivationDefence clustering "
                   "(seeded; a class is suspicious on absolute criteria, so all-to-all and all-to-one backdoors are "
                   "both found), a centroid-distance ratio, a centred spectral signature and the labels of each "
                   "row's nearest neighbours; a self-test that plants all-to-all and all-to-one pattern backdoors "
                   "in copies of the data and reports row- and class-level recall and false-positive rates.")
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
            cfg = settings(self, sheet.config)
            epochs = cfg.selftest_epochs or sheet.config.training.epochs
            copies = len(cfg.selftest_patterns) if cfg.selftest_rate > 0 else 0
            sheet.add(f"check {self.id} (self-test training)", copies * epochs * sheet.n_train,
                      2.0 * sheet.n_train * (1 + copies), train=True)

    def not_applicable(self, ctx: AuditContext) -> str:
        if ctx.data.num_classes < 2:
            return "one class: a backdoor needs a target class"
        return embedding_unavailable(ctx)

    def measure(self, ctx: AuditContext) -> Measurement:
        cfg = settings(self, ctx.config)
        d = ctx.data
        with ctx.stage("backdoor: embeddings"):
            e, held = ctx.get(TrainEmbeddings), ctx.get(TestEmbeddings)
        if e is None or held is None:
            return Measurement(check=self.id, skipped=NO_EMBEDDINGS)
        y = d.y_train.numpy()
        with ctx.stage("backdoor: screen"):
            s = screen(e, y, cfg, ctx.config.seed, stage=ctx.stage, heldout=(held, d.y_test.numpy()))
        names = d.class_names
        flagged = s.flagged
        classes = _class_rows(s.classes, names)
        suspicious = tuple(c.label for c in classes if c.flagged)

        def row(i, label=False):
            return ScreenedRow(row=int(i), ratio_z=round(float(s.ratio_z[i]), 3),
                               spectral_z=round(float(s.spectral_z[i]), 3), clustered=bool(s.clustered[i]),
                               label=names[y[i]] if label else "")
        rate = float(flagged.mean())
        metrics: dict[str, float | None] = {"backdoor_flag_rate": rate, "suspicious_classes": float(len(suspicious)),
                                            "flagged_rows": float(flagged.sum())}
        summary = (f"{int(flagged.sum())} of {len(y)} training rows flagged ({rate:.1%}); "
                   f"{len(suspicious)} suspicious class(es)" + (f" ({', '.join(suspicious)})" if suspicious else ""))
        why_no_test = self._why_no_self_test(ctx)
        tests = self_test(ctx, cfg) if not why_no_test else ()
        at_best, said, weak = _judge_self_tests(tests, cfg, metrics)
        details = BackdoorDetails(
            rows=int(len(y)), dimensions=int(e.shape[1]), model="baseline (penultimate layer)",
            settings={k: float(getattr(cfg, k)) for k in SETTINGS}, classes=classes, suspicious_classes=suspicious,
            detector_flags={k: int(v.sum()) for k, v in s.detectors().items()},
            top_rows=tuple(row(i, label=True) for i in np.argsort(-s.score, kind="stable")[:MAX_LISTED]
                           if flagged[i]),
            flagged=tuple(row(i) for i in np.flatnonzero(flagged)), selftests=tests, selftest_skipped=why_no_test)
        summary = ("SCREEN WEAK ON THIS DATA: " if weak else "") + summary + said
        return Measurement(check=self.id, metrics={k: v for k, v in metrics.items() if v is not None},
                           details=details, summary=summary, at_best=at_best)

    def _why_no_self_test(self, ctx: AuditContext) -> str:
        cfg = settings(self, ctx.config)
        if cfg.selftest_rate <= 0 or not cfg.selftest_patterns:
            return "backdoor.selftest_rate = 0" if cfg.selftest_rate <= 0 else "backdoor.selftest_patterns = []"
        if not ctx.can_train:
            return "the self-test trains the architecture on a poisoned copy; an archive cannot be retrained"
        if ctx.data.lazy:
            return "the data is read lazily; the self-test needs an in-memory poisoned copy"
        if ctx.data.num_classes < 2:
            return "one class"
        return ""


def _worst(values, pick=min) -> float | None:
    kept = [v for v in values if v is not None]
    return pick(kept) if kept else None


def _judge_self_tests(tests: tuple[BackdoorSelfTest, ...], cfg: BackdoorConfig,
                      metrics: dict[str, float | None]) -> tuple[Status | None, str, bool]:
    """The self-tests' metrics (the worst pattern's: lowest recall and attack success, highest false-positive
    rate), the finding's ceiling, the summary's sentence and whether the screen is weak on this data."""
    if not tests:
        return None, "", False
    screen_rates = [t.detectors["screen"] for t in tests]
    recall = _worst(r.recall for r in screen_rates)
    asr = _worst(t.attack_success_rate for t in tests)
    metrics.update(selftest_recall=recall, selftest_false_positive_rate=_worst(
        (r.false_positive_rate for r in screen_rates), max), selftest_attack_success_rate=asr,
        selftest_class_recall=_worst(t.class_recall for t in tests),
        selftest_class_false_positive_rate=_worst((t.class_false_positive_rate for t in tests), max))
    parts = []
    for t in tests:
        r = t.detectors["screen"]
        cls = (f", classes {t.class_recall:.0%} recall" if t.class_recall is not None else "") + \
            (f" at {t.class_false_positive_rate:.0%} false positives" if t.class_false_positive_rate is not None
             else "")
        took = f"attack success {t.attack_success_rate:.0%}" if t.attack_success_rate is not None else "no attack"
        parts.append(f"{t.pattern} ({took}): rows {r.recall:.0%} recall at {r.false_positive_rate:.1%} "
                     f"false positives{cls}" if r.recall is not None and r.false_positive_rate is not None
                     else f"{t.pattern}: no training row could carry the planted backdoor")
    said = f"; self-test with a {tests[0].rate:.0%} pattern backdoor, " + "; ".join(parts)
    if recall is None or asr is None:
        return Status.WARN, said + " (inconclusive: no training row could carry a planted backdoor)", False
    if asr < cfg.min_attack_success:
        return Status.WARN, said + " (a planted backdoor did not take; the self-test is inconclusive)", False
    if recall < cfg.min_selftest_recall:
        return Status.WARN, said, True
    return None, said, False

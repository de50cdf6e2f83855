"""Label issues in the training and test splits, found by cleanlab on out-of-sample predicted probabilities
(audit/methods/label_issues.py): K-fold training of the audited architecture ("kfold"), a K-fold logistic
regression on the baseline's penultimate embeddings ("proxy"), or the user's own probabilities; the test split's
from the baseline, which never saw it. An in-sample guard downgrades the finding; a self-test flips a known share
of labels in a copy of the training split and reports the detector's precision, recall and F1 on this data.

Evidence for training-data sanitisation against label-flipping (availability) poisoning, NIST AI 100-2 §2.3.1.
It does not see clean-label or backdoor poisoning, where labels are correct.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, CostSheet, RunCheck, controls, register, settings
from audit.checks.run_view import Shared, TestLabelIssues, TestProbabilities, TrainEmbeddings
from audit.config.bounds import check_data_bounds
from audit.config.data_checks import LabelIssuesConfig
from audit.core.errors import UsageError
from audit.core.result import Details, Finding, Measurement, Status
from audit.data.rows import take
from audit.methods.label_issues import (
    find_issues,
    flip_labels,
    in_sample_suspected,
    precision_recall,
    proxy_probabilities,
)
from audit.methods.out_of_fold import KFold, kfold_probabilities
from audit.methods.seeding import LABEL_SELFTEST

MAX_LISTED = 25
MAX_THUMBNAILS = 16


@dataclass(frozen=True)
class SuspectLabel:
    index: int
    given_label: str
    predicted_label: str
    label_quality: float | None = None
    thumbnail_png: str = ""         # base64 PNG of the image row (image data only)


@dataclass(frozen=True)
class ClassIssues:
    issues: int
    rows: int
    rate: float


@dataclass(frozen=True)
class TestSplitIssues:
    __test__ = False  # not a pytest class
    issues: int
    rows: int
    rate: float
    indices_ranked: tuple[int, ...]
    top_issues: tuple[SuspectLabel, ...]


@dataclass(frozen=True)
class FlipSelfTest:
    flip_rate: float
    flipped: int
    flagged: int
    true_positives: int
    precision: float
    recall: float
    f1: float
    method: str
    note: str


@dataclass(frozen=True)
class LabelIssuesDetails(Details):
    indices_ranked: tuple[int, ...]        # flagged training rows, worst first
    top_issues: tuple[SuspectLabel, ...]
    per_class_issues: dict[str, ClassIssues]
    label_quality: tuple[float, ...]       # cleanlab's label quality score of every training row
    folds: int
    epochs: int
    split: str
    in_sample_guard: str                   # "passed", or why the probabilities look in-sample
    method: str
    test_split: TestSplitIssues | None = None
    selftest: FlipSelfTest | None = None


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-sample probabilities of the training labels, ``method``: "kfold", "proxy" or "user"; ``flips``: the
    self-test's (flipped labels, flipped mask) when it runs; ``flipped_probs``: the K-fold probabilities of the
    flipped copy, trained in the same batch of units (None otherwise)."""

    probs: np.ndarray
    method: str
    flips: tuple[np.ndarray, np.ndarray] | None = None
    flipped_probs: np.ndarray | None = None


def out_of_fold(run: AuditContext, method: str, *label_sets: np.ndarray) -> list[np.ndarray]:
    """Out-of-sample probabilities of each set of training labels, by K-fold training ("kfold") of the audited
    architecture or a K-fold logistic regression on the baseline's embeddings ("proxy")."""
    cfg = run.config.label_issues
    if method == "proxy":
        e = run.get(TrainEmbeddings)
        if e is None:
            raise UsageError("label_issues.method 'proxy' needs a model with a final nn.Linear layer")
        return [proxy_probabilities(e, labels, run.data.num_classes, cfg.folds, run.config.seed)
                for labels in label_sets]
    t = run.config.training
    plan = KFold(folds=cfg.folds, epochs=cfg.epochs, batch_size=t.batch_size, lr=t.lr, seed=run.config.seed)
    return kfold_probabilities(plan, run.models.spec(), run.share(run.data.x_train), run.data.num_classes,
                               run.run_units, *label_sets)


class OutOfFoldProbabilities(Shared[OutOfFold]):
    """The training labels' out-of-sample probabilities: the user's when given, else K-fold (the proxy when the
    architecture cannot be trained); with K-fold, the self-test's flipped copy is trained in the same batch."""

    stage = "out-of-fold probabilities"

    @classmethod
    def compute(cls, run, variant):
        if run.user_pred_probs is not None:
            return OutOfFold(run.user_pred_probs, "user")
        cfg = run.config.label_issues
        method = "proxy" if cfg.method == "kfold" and not run.can_train else cfg.method
        labels = run.data.y_train.numpy()
        flips = None if cfg.selftest_flip_rate <= 0 else flip_labels(
            labels, cfg.selftest_flip_rate, run.data.num_classes, LABEL_SELFTEST.seed(run.config.seed))
        if method == "kfold" and flips is not None:
            probs, flipped = out_of_fold(run, method, labels, flips[0])  # one batch of units: 2K folds at once
            return OutOfFold(probs, method, flips, flipped)
        return OutOfFold(out_of_fold(run, method, labels)[0], method, flips)


@register
class LabelIssues(RunCheck):
    id = "label_issues"
    rank = 110
    title = "Label issues in the training and test data (cleanlab)"
    controls = controls(MAP_2_3="direct", MEASURE_2_5="supporting", MEASURE_2_1="supporting",
                        MAP_4_1="supporting")
    description = ("cleanlab find_label_issues on out-of-sample probabilities (K-fold training of the audited "
                   "architecture, or a logistic-regression proxy on its embeddings), ranked by label quality; an "
                   "in-sample guard; a self-test with injected label flips.")
    Details = LabelIssuesDetails
    Config = LabelIssuesConfig   # its [checks.label_issues] table (in the config room: audit/methods uses it too)
    triage_columns = ("label_issue", "label_issue_rank", "label_quality")

    def triage(self, details: LabelIssuesDetails, row) -> None:
        """Every suspected label error (training rows, then the test split's), ranked, with its label quality."""
        by_index = {t.index: t for t in details.top_issues}
        for rank, i in enumerate(details.indices_ranked, 1):
            r = row("train", i)
            r.update(label_issue=True, label_issue_rank=rank)
            if i < len(details.label_quality):
                r["label_quality"] = details.label_quality[i]
            if i in by_index:
                r.update(given_label=by_index[i].given_label, predicted_label=by_index[i].predicted_label)
        if details.test_split is not None:
            tops = {t.index: t for t in details.test_split.top_issues}
            for rank, i in enumerate(details.test_split.indices_ranked, 1):
                r = row("test", i)
                r.update(label_issue=True, label_issue_rank=rank)
                if i in tops:
                    r.update(given_label=tops[i].given_label, predicted_label=tops[i].predicted_label)

    def residual_risk(self, finding: Finding) -> str:
        if "label_issue_rate" not in finding.metrics:
            return ""
        return (f"{finding.metrics['label_issue_rate']:.1%} of training labels are suspected errors and remain "
                f"in the training data unless cleaned.")

    def preflight(self, config, data) -> None:
        """K-fold needs every class in every fold: at most as many folds as the smallest class has rows."""
        counts = np.bincount(data.y_train.numpy())
        check_data_bounds(config, int(data.y_train.shape[0]), int(counts[counts > 0].min()))

    def cost(self, sheet: CostSheet) -> None:
        li = settings(self, sheet.config)
        if li.method == "kfold" and sheet.trainable and not li.pred_probs:
            k = li.folds
            sheet.add(f"check {self.id} ({k} folds + the self-test's {k})",
                      2 * k * li.epochs * sheet.n_train * (k - 1) / k, 2.0 * sheet.n_train, train=True)

    def not_applicable(self, ctx: AuditContext) -> str:
        cfg = ctx.config.label_issues
        if cfg.method == "kfold" and not ctx.can_train and ctx.user_pred_probs is None \
                and "baseline" not in ctx.variants:
            return "K-fold probabilities need model.factory to train the architecture; an archive cannot be retrained"
        return ""

    def measure(self, ctx: AuditContext) -> Measurement:
        from cleanlab.rank import get_label_quality_scores
        cfg = ctx.config.label_issues
        labels = ctx.data.y_train.numpy()
        k = ctx.data.num_classes
        oof = ctx.get(OutOfFoldProbabilities)  # with K-fold, the self-test's flipped copy trained in the same batch
        probs, method, flips = oof.probs, oof.method, oof.flips
        source = {"user": f"user-supplied probabilities ({cfg.pred_probs})",
                  "kfold": f"{cfg.folds}-fold training of the audited architecture",
                  "proxy": f"{cfg.folds}-fold logistic regression on the baseline's penultimate embeddings"}[method]
        guard = in_sample_suspected(probs, labels, self._reference(ctx), max_accuracy=cfg.in_sample_accuracy,
                                    max_confidence=cfg.in_sample_confidence)
        ranked = find_issues(labels, probs)
        quality = get_label_quality_scores(labels, probs)
        names = ctx.data.class_names
        per_class = {names[c]: ClassIssues(issues=int((labels[ranked] == c).sum()), rows=int((labels == c).sum()),
                                           rate=float((labels[ranked] == c).sum() / max((labels == c).sum(), 1)))
                     for c in range(k)}
        thumbs = self._thumbnails(ctx, ranked[:MAX_THUMBNAILS])
        listed = tuple(SuspectLabel(index=int(i), given_label=names[labels[i]],
                                    predicted_label=names[int(probs[i].argmax())], label_quality=float(quality[i]),
                                    thumbnail_png=thumbs[j] if j < len(thumbs) else "")
                       for j, i in enumerate(ranked[:MAX_LISTED]))
        oof_acc = float((probs.argmax(1) == labels).mean())
        rate = len(ranked) / len(labels)
        metrics = {"label_issue_rate": rate, "label_issues": float(len(ranked)), "out_of_fold_accuracy": oof_acc}
        test = self._test_split(ctx)
        if test is not None:
            metrics["test_label_issue_rate"] = test.rate
        selftest = None
        if flips is not None:
            selftest = self._self_test(ctx, flips, method, cfg.selftest_flip_rate, oof.flipped_probs)
            metrics["selftest_f1"] = selftest.f1
        details = LabelIssuesDetails(
            indices_ranked=tuple(int(i) for i in ranked), top_issues=listed, per_class_issues=per_class,
            label_quality=tuple(round(float(q), 5) for q in quality), folds=cfg.folds, epochs=cfg.epochs,
            split="train", in_sample_guard=guard or "passed",
            method=f"cleanlab.filter.find_label_issues on {source}", test_split=test, selftest=selftest)
        summary = (f"{len(ranked)} of {len(labels)} training labels flagged ({rate:.1%}); out-of-fold accuracy "
                   f"{oof_acc:.1%}")
        if test is not None:
            summary += f"; test split {test.issues} of {test.rows} ({test.rate:.1%})"
        if selftest is not None:
            summary += (f"; self-test with {selftest.flip_rate:.0%} injected flips: precision "
                        f"{selftest.precision:.2f}, recall {selftest.recall:.2f}, F1 {selftest.f1:.2f}")
        if guard:
            summary = "IN-SAMPLE PROBABILITIES SUSPECTED: " + summary
        return Measurement(check=self.id, variant=None, metrics=metrics, details=details, summary=summary,
                           at_best=Status.WARN if guard else None)

    def _thumbnails(self, ctx: AuditContext, rows: np.ndarray) -> list[str]:
        if ctx.data.kind != "image" or len(ctx.data.input_shape) != 3 or not len(rows):
            return []
        from audit.methods.thumbnails import thumbnail
        images = take(ctx.data.x_train, np.asarray(rows, dtype=np.int64))
        if not isinstance(images, torch.Tensor):  # lazily read rows: read these few now
            images = images[0:len(rows)]
        return [thumbnail(img, ctx.data.clip) for img in images]

    def _reference(self, ctx: AuditContext) -> tuple[float, int] | None:
        if "baseline" not in ctx.variants:
            return None
        ok = ctx.clean_correct("baseline")
        return float(ok.mean()), int(len(ok))

    def _test_split(self, ctx: AuditContext) -> TestSplitIssues | None:
        """Label issues in the test split, from the baseline's probabilities (it never saw the test split)."""
        if ctx.variants.get("baseline") is None:
            return None
        labels = ctx.data.y_test.numpy()
        probs = ctx.get(TestProbabilities, "baseline")
        ranked = ctx.get(TestLabelIssues)
        names = ctx.data.class_names
        return TestSplitIssues(
            issues=int(len(ranked)), rows=int(len(labels)), rate=len(ranked) / len(labels),
            indices_ranked=tuple(int(i) for i in ranked),
            top_issues=tuple(SuspectLabel(index=int(i), given_label=names[labels[i]],
                                          predicted_label=names[int(probs[i].argmax())]) for i in ranked[:MAX_LISTED]))

    def _self_test(self, ctx: AuditContext, flips: tuple[np.ndarray, np.ndarray], method: str, rate: float,
                   noisy_probs: np.ndarray | None) -> FlipSelfTest:
        noisy, flipped = flips
        found = np.zeros(len(noisy), dtype=bool)
        probs = noisy_probs if noisy_probs is not None else out_of_fold(ctx, method, noisy)[0]
        found[find_issues(noisy, probs)] = True
        tp, precision, recall, f1 = precision_recall(found, flipped)
        return FlipSelfTest(flip_rate=rate, flipped=int(flipped.sum()), flagged=int(found.sum()), true_positives=tp,
                            precision=precision, recall=recall, f1=f1, method=method,
                            note="labels flipped uniformly to another class in a copy of the training split; the "
                                 "same detector re-run on the copy")

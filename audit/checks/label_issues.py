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

from audit.checks.base import AuditContext, controls
from audit.core.errors import UsageError
from audit.core.result import Details, Measurement, Status
from audit.core.work import Unit
from audit.data.rows import take
from audit.methods.jobs import fold_unit
from audit.methods.label_issues import (
    find_issues,
    flip_labels,
    fold_assignment,
    in_sample_suspected,
    precision_recall,
    proxy_probabilities,
)

MAX_LISTED = 25
MAX_THUMBNAILS = 16
FOLD_SEED_OFFSET = 1       # fold k trains under seed + 1 + k
SELFTEST_SEED_OFFSET = 101


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


def kfold_probabilities(ctx: AuditContext, *label_sets: np.ndarray) -> list[np.ndarray]:
    """Out-of-fold probabilities from K-fold training of the audited architecture, for each set of labels (the
    given ones, the self-test's flipped copy): every fold of every set is an independent unit of the run's
    executor, all submitted together, each with its fold's seed."""
    cfg, t = ctx.config.label_issues, ctx.config.training
    spec, x = ctx.model_spec(), ctx.share(ctx.data.x_train)
    units, held_rows = [], []
    for j, labels in enumerate(label_sets):
        fold_of = fold_assignment(labels, cfg.folds, ctx.config.seed)
        y = torch.from_numpy(labels)
        for k in range(cfg.folds):
            fit, held = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
            kw = dict(epochs=cfg.epochs, batch_size=t.batch_size, lr=t.lr, seed=ctx.config.seed + k,
                      desc=f"fold {k + 1}/{cfg.folds}")
            units.append(Unit(f"{'self-test ' if j else ''}fold {k + 1}/{cfg.folds}", fold_unit,
                              (spec, ctx.seed_of(FOLD_SEED_OFFSET + k), x, y, fit, held, kw)))
            held_rows.append((j, held))
    probs = [np.zeros((len(labels), ctx.data.num_classes), dtype=np.float64) for labels in label_sets]
    for (j, held), p in zip(held_rows, ctx.run_units(units), strict=False):
        probs[j][held] = p
    return probs


class LabelIssues:
    id = "label_issues"
    title = "Label issues in the training and test data (cleanlab)"
    scope = "data"
    controls = controls(MAP_2_3="direct", MEASURE_2_5="supporting", MEASURE_2_1="supporting",
                        MAP_4_1="supporting")
    description = ("cleanlab find_label_issues on out-of-sample probabilities (K-fold training of the audited "
                   "architecture, or a logistic-regression proxy on its embeddings), ranked by label quality; an "
                   "in-sample guard; a self-test with injected label flips.")
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    Details = LabelIssuesDetails

    def _probs(self, ctx: AuditContext, labels: np.ndarray, method: str) -> np.ndarray:
        cfg = ctx.config.label_issues
        if method == "proxy":
            e = ctx.embedding("train")
            if e is None:
                raise UsageError("label_issues.method 'proxy' needs a model with a final nn.Linear layer")
            return proxy_probabilities(e, labels, ctx.data.num_classes, cfg.folds, ctx.config.seed)
        return kfold_probabilities(ctx, labels)[0]

    def measure(self, ctx: AuditContext, variant: str | None) -> Measurement:
        from cleanlab.rank import get_label_quality_scores
        cfg = ctx.config.label_issues
        method = cfg.method
        if method == "kfold" and not ctx.can_train and ctx.user_pred_probs is None:
            if "baseline" not in ctx.variants:
                return Measurement(check=self.id, skipped="K-fold probabilities need model.factory to train the "
                                                          "architecture; an archive cannot be retrained")
            method = "proxy"
        labels = ctx.data.y_train.numpy()
        k = ctx.data.num_classes
        flips = None if cfg.selftest_flip_rate <= 0 or ctx.user_pred_probs is not None else \
            flip_labels(labels, cfg.selftest_flip_rate, k, ctx.config.seed + SELFTEST_SEED_OFFSET)
        noisy_probs: list = []

        def compute() -> np.ndarray:
            if method != "kfold" or flips is None:
                return self._probs(ctx, labels, method)
            probs, noisy = kfold_probabilities(ctx, labels, flips[0])  # one batch of units: 2K folds at once
            noisy_probs.append(noisy)
            return probs
        if ctx.user_pred_probs is not None:
            probs = ctx.label_probabilities(lambda: ctx.user_pred_probs)
            source = f"user-supplied probabilities ({cfg.pred_probs})"
        else:
            probs = ctx.label_probabilities(compute)
            source = {"kfold": f"{cfg.folds}-fold training of the audited architecture",
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
            selftest = self._self_test(ctx, flips, method, cfg.selftest_flip_rate,
                                       noisy_probs[0] if noisy_probs else None)
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
        probs = ctx.test_probabilities("baseline")
        ranked = ctx.test_label_issues()
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
        probs = noisy_probs if noisy_probs is not None else self._probs(ctx, noisy, method)
        found[find_issues(noisy, probs)] = True
        tp, precision, recall, f1 = precision_recall(found, flipped)
        return FlipSelfTest(flip_rate=rate, flipped=int(flipped.sum()), flagged=int(found.sum()), true_positives=tp,
                            precision=precision, recall=recall, f1=f1, method=method,
                            note="labels flipped uniformly to another class in a copy of the training split; the "
                                 "same detector re-run on the copy")

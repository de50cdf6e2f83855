"""Label issues in the training and test splits, found by cleanlab on out-of-sample predicted probabilities.

cleanlab's ``find_label_issues`` needs out-of-sample probabilities: with in-sample probabilities of a model that
fits its training data it flags nothing and gives no warning (REFERENCE section 6). So the training split's
probabilities come from K-fold training of the audited architecture ("kfold") or K-fold logistic regression on the
baseline's penultimate embeddings ("proxy"); the test split's from the baseline, which never saw it. A guard flags
probabilities that look in-sample (near-perfect accuracy at near-certain confidence) and downgrades the finding.
A self-test flips a known share of labels in a copy of the training split and reports the detector's precision,
recall and F1 on this data.

Evidence for training-data sanitisation against label-flipping (availability) poisoning, NIST AI 100-2 §2.3.1.
It does not see clean-label or backdoor poisoning, where labels are correct.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from attacks.training import train
from audit.checks.base import controls
from audit.context import Context
from audit.embeddings import train_embedding
from audit.errors import UsageError
from audit.result import Measurement, Status
from audit.rows import take

MAX_LISTED = 25
MAX_THUMBNAILS = 16
IN_SAMPLE_ACCURACY, IN_SAMPLE_CONFIDENCE = 0.995, 0.97


def _folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    for c in np.unique(y):  # stratified folds
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    return fold_of


def out_of_fold_probabilities(ctx: Context, folds: int, epochs: int, labels: np.ndarray | None = None) -> np.ndarray:
    """Softmax probabilities for every training point from a model trained on the other folds."""
    y = ctx.data.y_train.numpy() if labels is None else labels
    yt = torch.from_numpy(y)
    fold_of = _folds(y, folds, ctx.config.seed)
    probs = np.zeros((len(y), ctx.data.num_classes), dtype=np.float64)
    t = ctx.config.training
    for k in range(folds):
        fit, held = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        ctx.seed_everything(offset=k + 1)
        model = ctx.build_model()
        train(model, take(ctx.data.x_train, fit), yt[fit], epochs=epochs, batch_size=t.batch_size,
              lr=t.lr, seed=ctx.config.seed + k, desc=f"fold {k + 1}/{folds}")
        probs[held] = torch.softmax(ctx.logits(model, take(ctx.data.x_train, held)), 1).double().numpy()
    return probs


def proxy_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int,
                        seed: int) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression on fixed features (standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    fold_of = _folds(labels, folds, seed)
    probs = np.full((len(labels), num_classes), 1e-6)
    for k in range(folds):
        fit, held = fold_of != k, fold_of == k
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0))
        clf.fit(features[fit], labels[fit])
        probs[np.ix_(held, clf.classes_)] = clf.predict_proba(features[held])
    return probs / probs.sum(1, keepdims=True)


def in_sample_suspected(probs: np.ndarray, labels: np.ndarray, reference: tuple[float, int] | None = None) -> str:
    """Why these probabilities look in-sample ('' if they do not).

    Out-of-sample probabilities are about as accurate on the training labels as the model is on held-out data.
    ``reference``: (accuracy, n) of the audited model on the test split; probabilities more accurate than that by
    more than two standard errors (at least one point) are suspect. Without a reference, or in any case,
    near-perfect accuracy at near-certain confidence is suspect.
    """
    acc = float((probs.argmax(1) == labels).mean())
    conf = float(probs.max(1).mean())
    why = ""
    if reference is not None:
        ref_acc, n = reference
        margin = max(0.01, 2 * float(np.sqrt(max(ref_acc * (1 - ref_acc), 1e-12) / max(n, 1))))
        if acc > ref_acc + margin:
            why = f"accuracy {acc:.1%} on the given labels exceeds the model's held-out accuracy {ref_acc:.1%} " \
                  f"by more than {margin:.1%}"
    if not why and acc >= IN_SAMPLE_ACCURACY and conf >= IN_SAMPLE_CONFIDENCE:
        why = f"accuracy {acc:.1%} on the given labels at mean confidence {conf:.1%}"
    if why:
        return (f"the probabilities look in-sample ({why}); cleanlab finds almost nothing with in-sample "
                f"probabilities, so a low count here is not evidence of clean labels")
    return ""


def read_pred_probs(path: Path, n: int, k: int) -> np.ndarray:
    try:
        p = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"label_issues.pred_probs: file not found: {path}") from None
    except ValueError as e:
        raise UsageError(f"label_issues.pred_probs: {path} is not a plain .npy array ({e})") from None
    if p.shape != (n, k):
        raise UsageError(f"label_issues.pred_probs: shape {p.shape}, expected (n_train, classes) = ({n}, {k})")
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(1), 1, atol=1e-3):
        raise UsageError("label_issues.pred_probs: rows must be finite probabilities summing to 1")
    return p.astype(np.float64)


def flip_labels(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy with ``rate`` of the labels flipped uniformly to another class; returns (labels, flipped mask)."""
    rng = np.random.default_rng(seed)
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rng.choice(len(labels), int(round(rate * len(labels))), replace=False)] = True
    out = labels.copy()
    out[flipped] = (labels[flipped] + rng.integers(1, num_classes, flipped.sum())) % num_classes
    return out, flipped


def _issues(labels, probs):
    from cleanlab.filter import find_label_issues
    return find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")


def test_probabilities(ctx: Context) -> np.ndarray:
    """The baseline's softmax probabilities on the test split (out of sample: it never saw it)."""
    return ctx.cached(("test_probs", "baseline"),
                      lambda: torch.softmax(ctx.test_logits("baseline"), 1).double().numpy())


def test_label_issues(ctx: Context) -> np.ndarray:
    """Ranked test rows whose label cleanlab doubts, from the baseline's out-of-sample probabilities (cached)."""
    return ctx.cached(("label_issues", "test"), lambda: _issues(ctx.data.y_test.numpy(), test_probabilities(ctx)))


class LabelIssues:
    id = "label_issues"
    title = "Label issues in the training and test data (cleanlab)"
    scope = "data"
    controls = controls(MAP_2_3="direct", MEASURE_2_5="supporting", MEASURE_2_1="supporting",
                        MAP_4_1="supporting")
    description = ("cleanlab find_label_issues on out-of-sample probabilities (K-fold training of the audited "
                   "architecture, or a logistic-regression proxy on its embeddings), ranked by label quality; an "
                   "in-sample guard; a self-test with injected label flips.")

    def _probs(self, ctx: Context, labels: np.ndarray, method: str) -> np.ndarray:
        cfg = ctx.config.label_issues
        if method == "proxy":
            return proxy_probabilities(self._embedding(ctx), labels, ctx.data.num_classes, cfg.folds,
                                       ctx.config.seed)
        return out_of_fold_probabilities(ctx, cfg.folds, cfg.epochs, labels)

    def _embedding(self, ctx: Context) -> np.ndarray:
        e = train_embedding(ctx)
        if e is None:
            raise UsageError("label_issues.method 'proxy' needs a model with a final nn.Linear layer")
        return e

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        from cleanlab.rank import get_label_quality_scores
        cfg = ctx.config.label_issues
        method = cfg.method
        if method == "kfold" and not ctx.can_train and not cfg.pred_probs:
            if "baseline" not in ctx.variants:
                return Measurement(check=self.id, skipped="K-fold probabilities need model.factory to train the "
                                                          "architecture; an archive cannot be retrained")
            method = "proxy"
        labels = ctx.data.y_train.numpy()
        k = ctx.data.num_classes
        if cfg.pred_probs:
            probs = read_pred_probs(Path(ctx.base_dir or ".") / cfg.pred_probs, len(labels), k)
            source = f"user-supplied probabilities ({cfg.pred_probs})"
        else:
            probs = ctx.cached(("label_issues", "train_probs"), lambda: self._probs(ctx, labels, method))
            source = {"kfold": f"{cfg.folds}-fold training of the audited architecture",
                      "proxy": f"{cfg.folds}-fold logistic regression on the baseline's penultimate embeddings"}[method]
        guard = in_sample_suspected(probs, labels, self._reference(ctx))
        ranked = ctx.cached(("label_issues", "train_ranked"), lambda: _issues(labels, probs))
        quality = get_label_quality_scores(labels, probs)
        names = ctx.data.class_names
        per_class = {names[c]: {"issues": int((labels[ranked] == c).sum()), "rows": int((labels == c).sum()),
                                "rate": float((labels[ranked] == c).sum() / max((labels == c).sum(), 1))}
                     for c in range(k)}
        listed = [{"index": int(i), "given_label": names[labels[i]], "predicted_label": names[int(probs[i].argmax())],
                   "label_quality": float(quality[i])} for i in ranked[:MAX_LISTED]]
        if ctx.data.kind == "image" and len(ctx.data.input_shape) == 3:
            from audit.thumbnails import thumbnail
            rows = np.asarray(ranked[:MAX_THUMBNAILS], dtype=np.int64)
            images = take(ctx.data.x_train, rows) if len(rows) else []
            if len(rows) and not isinstance(images, torch.Tensor):  # lazily read rows: read these few now
                images = images[0:len(rows)]
            for item, img in zip(listed, images):
                item["thumbnail_png"] = thumbnail(img, ctx.data.clip)
        oof_acc = float((probs.argmax(1) == labels).mean())
        rate = len(ranked) / len(labels)
        details = {"indices_ranked": [int(i) for i in ranked], "top_issues": listed, "per_class_issues": per_class,
                   "label_quality": [round(float(q), 5) for q in quality],
                   "folds": cfg.folds, "epochs": cfg.epochs, "split": "train", "in_sample_guard": guard or "passed",
                   "method": f"cleanlab.filter.find_label_issues on {source}"}
        metrics = {"label_issue_rate": rate, "label_issues": float(len(ranked)), "out_of_fold_accuracy": oof_acc}
        test = self._test_split(ctx)
        if test is not None:
            details["test_split"] = test
            metrics["test_label_issue_rate"] = test["rate"]
        if cfg.selftest_flip_rate > 0 and not cfg.pred_probs:
            st = self._self_test(ctx, labels, method, cfg.selftest_flip_rate)
            details["selftest"] = st
            metrics["selftest_f1"] = st["f1"]
        summary = (f"{len(ranked)} of {len(labels)} training labels flagged ({rate:.1%}); out-of-fold accuracy "
                   f"{oof_acc:.1%}")
        if test is not None:
            summary += f"; test split {test['issues']} of {test['rows']} ({test['rate']:.1%})"
        if "selftest" in details:
            st = details["selftest"]
            summary += (f"; self-test with {st['flip_rate']:.0%} injected flips: precision {st['precision']:.2f}, "
                        f"recall {st['recall']:.2f}, F1 {st['f1']:.2f}")
        if guard:
            summary = "IN-SAMPLE PROBABILITIES SUSPECTED: " + summary
        return Measurement(check=self.id, variant=None, metrics=metrics, details=details, summary=summary,
                           at_best=Status.WARN if guard else None)

    def _reference(self, ctx: Context) -> tuple[float, int] | None:
        if "baseline" not in ctx.variants:
            return None
        y = ctx.data.y_test
        return float((ctx.test_logits("baseline").argmax(1) == y).float().mean()), int(len(y))

    def _test_split(self, ctx: Context) -> dict | None:
        """Label issues in the test split, from the baseline's probabilities (it never saw the test split)."""
        if ctx.variants.get("baseline") is None:
            return None
        labels = ctx.data.y_test.numpy()
        probs = test_probabilities(ctx)
        ranked = test_label_issues(ctx)
        names = ctx.data.class_names
        return {"issues": int(len(ranked)), "rows": int(len(labels)), "rate": len(ranked) / len(labels),
                "indices_ranked": [int(i) for i in ranked],
                "top_issues": [{"index": int(i), "given_label": names[labels[i]],
                                "predicted_label": names[int(probs[i].argmax())]} for i in ranked[:MAX_LISTED]]}

    def _self_test(self, ctx: Context, labels: np.ndarray, method: str, rate: float) -> dict:
        noisy, flipped = flip_labels(labels, rate, ctx.data.num_classes, ctx.config.seed + 101)
        found = np.zeros(len(labels), dtype=bool)
        found[_issues(noisy, self._probs(ctx, noisy, method))] = True
        tp = int((found & flipped).sum())
        precision = tp / max(int(found.sum()), 1)
        recall = tp / max(int(flipped.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"flip_rate": rate, "flipped": int(flipped.sum()), "flagged": int(found.sum()), "true_positives": tp,
                "precision": precision, "recall": recall, "f1": f1, "method": method,
                "note": "labels flipped uniformly to another class in a copy of the training split; the same "
                        "detector re-run on the copy"}

"""Label-issue detection with cleanlab on out-of-sample probabilities, and what keeps it honest.

cleanlab's ``find_label_issues`` needs out-of-sample probabilities: with in-sample probabilities of a model that
fits its training data it flags nothing and gives no warning (REFERENCE section 6). So probabilities come from
K-fold training (each fold scored by a model that never saw it) or a K-fold linear proxy on fixed features, and a
guard flags probabilities that look in-sample. ``flip_labels`` makes the self-test's known noise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.core.errors import UsageError
from audit.data.limits import npy_header


def fold_assignment(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold index of every row, seeded."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    return fold_of


def proxy_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int,
                        seed: int) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression on fixed features (standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    fold_of = fold_assignment(labels, folds, seed)
    probs = np.full((len(labels), num_classes), 1e-6)
    for k in range(folds):
        fit, held = fold_of != k, fold_of == k
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0))
        clf.fit(features[fit], labels[fit])
        probs[np.ix_(held, clf.classes_)] = clf.predict_proba(features[held])
    return probs / probs.sum(1, keepdims=True)


def in_sample_suspected(probs: np.ndarray, labels: np.ndarray, reference: tuple[float, int] | None = None, *,
                        max_accuracy: float = 0.995, max_confidence: float = 0.97) -> str:
    """Why these probabilities look in-sample ('' if they do not).

    Out-of-sample probabilities are about as accurate on the training labels as the model is on held-out data.
    ``reference``: (accuracy, n) of the audited model on the test split; probabilities more accurate than that by
    more than two standard errors (at least one point) are suspect. Without a reference, or in any case,
    accuracy >= ``max_accuracy`` at mean confidence >= ``max_confidence`` is suspect.
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
    if not why and acc >= max_accuracy and conf >= max_confidence:
        why = f"accuracy {acc:.1%} on the given labels at mean confidence {conf:.1%}"
    if why:
        return (f"the probabilities look in-sample ({why}); cleanlab finds almost nothing with in-sample "
                f"probabilities, so a low count here is not evidence of clean labels")
    return ""


def read_pred_probs(path: Path, n: int, k: int) -> np.ndarray:
    """The user's (n_train, classes) probabilities from a plain .npy (never unpickled), checked."""
    try:
        with open(path, "rb") as fh:  # the header first: its shape and dtype before anything is allocated
            shape, _fortran, _dtype = npy_header(fh)
        if tuple(shape) != (n, k):
            raise UsageError(f"label_issues.pred_probs: shape {tuple(shape)}, expected (n_train, classes) = "
                             f"({n}, {k})")
        p = np.load(path, allow_pickle=False)
        if not isinstance(p, np.ndarray):
            raise ValueError("not a single .npy array")
    except FileNotFoundError:
        raise UsageError(f"label_issues.pred_probs: file not found: {path}") from None
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"label_issues.pred_probs: {path} is not a plain .npy array ({e})") from None
    if p.dtype.kind not in "fiu":
        raise UsageError(f"label_issues.pred_probs: dtype {p.dtype} is not numeric")
    if p.shape != (n, k):
        raise UsageError(f"label_issues.pred_probs: shape {p.shape}, expected (n_train, classes) = ({n}, {k})")
    p = p.astype(np.float64)
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(1), 1, atol=1e-3):
        raise UsageError("label_issues.pred_probs: rows must be finite probabilities summing to 1")
    return p


def flip_labels(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy with ``rate`` of the labels flipped uniformly to another class; returns (labels, flipped mask)."""
    rng = np.random.default_rng(seed)
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rng.choice(len(labels), int(round(rate * len(labels))), replace=False)] = True
    out = labels.copy()
    out[flipped] = (labels[flipped] + rng.integers(1, num_classes, flipped.sum())) % num_classes
    return out, flipped


def find_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row indices cleanlab flags, ranked by self-confidence (worst first)."""
    from cleanlab.filter import find_label_issues
    return np.asarray(find_label_issues(labels, probs, return_indices_ranked_by="self_confidence"), dtype=np.int64)


def precision_recall(found: np.ndarray, truth: np.ndarray) -> tuple[int, float, float, float]:
    """(true positives, precision, recall, F1) of a boolean detection against the truth."""
    tp = int((found & truth).sum())
    precision = tp / max(int(found.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return tp, precision, recall, f1

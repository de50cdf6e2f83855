"""Backdoor screening on penultimate-layer activations (numpy in, numpy out).

Row detectors, each per class (a backdoor's poisons carry the target label, so they hide inside one class):

- **Centroid-distance ratio**: distance to the row's own class centroid over the distance to the nearest other
  class centroid. A triggered "3" labelled "4" keeps much of its "3" features, so it sits between the two.
  Robust z-score per class (median and MAD); rows above ``ratio_z`` are flagged.
- **Spectral signature** (Tran et al. 2018), centred: the squared projection of each row, after subtracting the
  class mean, on the top right-singular vector of the class. ART's ``SpectralSignatureDefense`` scores uncentred
  activations and removes about half of every class; this one is a score with a robust z-score flag.
- **Neighbour labels** (deep k-NN, Peri et al. 2020): the share of a row's ``neighbours`` nearest training rows
  that carry another label; a row is flagged when most of them do. Triggered rows drawn from many source classes
  (an all-to-one backdoor) do not form one cluster, but each sits among rows of its source class.

Activation clustering (Chen et al. 2018) through ART, with the class rule (audit/methods/backdoor_clusters.py):
PCA to ``nb_dims`` per class (ART's ``reduce_dimensionality``) and seeded k-means (ART's ``cluster_activations``,
``restarts`` starts, the split with the lowest within-cluster sum of squares kept) into each of ``nb_clusters``
clusters (2 and 3: when a class's natural styles dominate the two-way split, the three-way split still isolates a
trigger's cluster). ART's own analyses flag clean classes (``smaller`` flags a cluster of every class; REFERENCE
section 7), so a cluster other than the largest is *suspicious* only when all of these hold, none of them a
comparison with the other classes (under an all-to-all backdoor every class is poisoned, and a z-score against the
others hides them all):

- it holds a plausible poison share of its class: between ``min_cluster_share`` and ``max_cluster_share``;
- it is well separated: its rows' mean silhouette against the rest of the class is at least ``min_silhouette``;
- it is not a natural style of the class: at least ``min_cluster_agreement`` of its rows are flagged by the
  centroid ratio, or the held-out rows of the class (the test split, taken as clean) leave it nearly empty, with
  a one-sided binomial p-value of at most ``heldout_p`` given its training share. A clean class's natural second
  style splits off too, a "1" with and without a base, but its rows are not between classes and held-out rows of
  the class fall into it; triggered rows have no counterpart in clean held-out data. The spectral signature does
  not count here: its top direction is often that natural split;
- it moved towards another class: some other class's centroid is nearer to it than to the rest of its class.

A class is **suspicious** when it has a suspicious cluster, or when its rows flagged by their neighbours' labels
are at least ``neighbour_share`` of the class and ``neighbour_excess`` times their share in the whole training
split, and sit among at least ``neighbour_classes`` different other classes: triggered rows drawn from many source
classes, where a clean class's ambiguous rows lean towards the one or two classes it resembles (and a model that
fits its data loosely has such rows in every class). The cluster criterion is absolute, so it holds whether one
class is poisoned (all-to-one) or every class is (all-to-all); the neighbour criterion, for triggered rows from
many sources, is measured against the whole split, so it finds them in a few classes, not in every one.

The screen flags a row when activation clustering, the centroid ratio or the spectral signature flags it; the
neighbour-label flag is reported beside it, with its own rates.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from audit.config.data_checks import BackdoorConfig
from audit.methods.backdoor_clusters import RowView, Stage, class_screens

MAD_TO_SD = 1.4826
DEFAULT_SETTINGS = BackdoorConfig()  # frozen: one shared default for screen()
PATTERNS = ("all-to-all", "all-to-one")
MAX_NEIGHBOUR_QUERIES = 20_000  # rows whose neighbours are looked up (a seeded sample on larger data)


@dataclass
class Screen:
    ratio: np.ndarray
    ratio_z: np.ndarray
    spectral: np.ndarray
    spectral_z: np.ndarray
    clustered: np.ndarray   # bool: in a cluster that activation clustering flags
    ratio_flag: np.ndarray
    spectral_flag: np.ndarray
    neighbour_disagreement: np.ndarray  # share of the row's nearest neighbours with another label (NaN: not queried)
    neighbour_label: np.ndarray         # the most common label among them (-1: not queried)
    classes: list[dict] = field(default_factory=list)

    @property
    def score(self) -> np.ndarray:
        """The screen's ranking score: the larger of the two robust z-scores."""
        return np.maximum(self.ratio_z, self.spectral_z)

    @property
    def flagged(self) -> np.ndarray:
        return self.clustered | self.ratio_flag | self.spectral_flag

    @property
    def neighbour_flag(self) -> np.ndarray:
        """Rows most of whose nearest neighbours carry another label."""
        return np.nan_to_num(self.neighbour_disagreement, nan=0.0) > 0.5

    @property
    def suspicious_classes(self) -> list[int]:
        return [int(c["class"]) for c in self.classes if c["flagged"]]

    def detectors(self) -> dict[str, np.ndarray]:
        return {"activation_clustering": self.clustered, "centroid_ratio": self.ratio_flag,
                "spectral_signature": self.spectral_flag, "neighbour_labels": self.neighbour_flag,
                "screen": self.flagged}


def robust_z(score: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(score - class median) / (1.4826 * class MAD), per class."""
    z = np.zeros(len(score))
    for c in np.unique(labels):
        i = labels == c
        med = np.median(score[i])
        mad = MAD_TO_SD * np.median(np.abs(score[i] - med))
        z[i] = (score[i] - med) / max(mad, 1e-12)
    return z


def _centroids(e: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes = np.unique(labels)
    return classes, np.stack([e[labels == c].mean(0) for c in classes]) if len(classes) else np.empty((0, e.shape[1]))


def centroid_ratio(e: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance to the own class centroid / distance to the nearest other class centroid (1.0 with one class)."""
    classes, centroids = _centroids(e, labels)
    if len(classes) < 2:
        return np.ones(len(labels))
    d = np.sqrt(np.maximum((e ** 2).sum(1)[:, None] - 2 * e @ centroids.T + (centroids ** 2).sum(1)[None], 0))
    own = np.searchsorted(classes, labels)
    rows = np.arange(len(labels))
    own_d = d[rows, own].copy()
    d[rows, own] = np.inf
    return own_d / np.maximum(d.min(1), 1e-12)


def spectral_signature(e: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Squared projection of the class-centred activations on the class's top singular vector.

    Only the top singular pair is needed: it is the top eigenpair of the smaller Gram matrix (R^T R, d x d, or
    R R^T, n x n), computed alone (LAPACK's subset eigensolver), which costs a fraction of a full SVD of R on wide
    activations (2,000 x 1,024: 0.15 s against 0.8 s); the scores agree with the SVD's to rounding (sign-free:
    the projection is squared)."""
    from scipy.linalg import eigh
    s = np.zeros(len(labels))
    for c in np.unique(labels):
        i = labels == c
        r = e[i] - e[i].mean(0)
        n, d = r.shape
        if n < 2:
            continue
        if n >= d:   # top right-singular vector v of R: the top eigenvector of R^T R
            _, v = eigh(r.T @ r, subset_by_index=[d - 1, d - 1])
            s[i] = (r @ v[:, 0]) ** 2
        else:        # R v = sigma u, with (sigma^2, u) the top eigenpair of R R^T
            w, u = eigh(r @ r.T, subset_by_index=[n - 1, n - 1])
            s[i] = max(float(w[0]), 0.0) * u[:, 0] ** 2
    return s


def neighbour_labels(e: np.ndarray, labels: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the share of its ``k`` nearest other rows (Euclidean) that carry another label, and the commonest of
    those other labels (-1: none); NaN and -1 for rows left out of the seeded sample of ``MAX_NEIGHBOUR_QUERIES``
    queries on larger data."""
    from sklearn.neighbors import NearestNeighbors
    n = len(labels)
    share, plural = np.full(n, np.nan), np.full(n, -1, dtype=np.int64)
    k = min(k, n - 1)
    if k < 1:
        return share, plural
    q = np.arange(n) if n <= MAX_NEIGHBOUR_QUERIES else \
        np.sort(np.random.default_rng(seed).choice(n, MAX_NEIGHBOUR_QUERIES, replace=False))
    idx = NearestNeighbors(n_neighbors=k + 1).fit(e).kneighbors(e[q], return_distance=False)
    # drop the row itself (first, unless an exact duplicate came first), else the farthest
    idx = np.take_along_axis(idx, np.argsort(idx == q[:, None], axis=1, kind="stable"), axis=1)[:, :k]
    near = labels[idx]
    other = near != labels[q][:, None]
    share[q] = other.mean(1)
    values, codes = np.unique(near, return_inverse=True)
    counts = np.zeros((len(q), len(values)), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(q)), k), codes.ravel()), other.ravel().astype(np.int64))
    plural[q] = np.where(other.any(1), values[counts.argmax(1)], -1)   # the commonest of the other labels
    return share, plural


def screen(e: np.ndarray, labels: np.ndarray, settings: BackdoorConfig = DEFAULT_SETTINGS, seed: int = 0,
           stage: Stage | None = None, heldout: tuple[np.ndarray, np.ndarray] | None = None) -> Screen:
    """Run the detectors on activations ``e`` (N, d) with the given labels; ``settings`` are the ``[backdoor]``
    config's thresholds, ``seed`` seeds k-means and the samples, ``stage`` (``ctx.stage``) times each part as a
    stage directly under the caller's ("backdoor: centroid ratio", "spectral signature", "neighbour labels", "PCA and
    k-means", "class rule"), ``heldout`` is (activations, labels) of held-out rows from the same model (the test
    split), taken as clean."""
    stage = stage or (lambda _name: contextlib.nullcontext())
    e = np.asarray(e, dtype=np.float64)
    labels = np.asarray(labels)
    with stage("backdoor: centroid ratio"):
        ratio = centroid_ratio(e, labels)
        rz = robust_z(ratio, labels)
    with stage("backdoor: spectral signature"):
        spec = spectral_signature(e, labels)
        sz = robust_z(np.sqrt(spec), labels)
    with stage("backdoor: neighbour labels"):
        nb = neighbour_labels(e, labels, settings.neighbours, seed)
    he, hy = (np.asarray(heldout[0], dtype=np.float64), np.asarray(heldout[1])) if heldout is not None \
        else (e[:0], labels[:0])
    view = RowView(e=e, labels=labels, centroids=_centroids(e, labels), ratio_z=rz,
                   ratio_flag=rz > settings.ratio_z, neighbours=nb, heldout=(he, hy))
    classes, clustered = class_screens(view, settings, seed, stage)
    out = Screen(ratio=ratio, ratio_z=rz, spectral=spec, spectral_z=sz, clustered=clustered,
                 ratio_flag=rz > settings.ratio_z, spectral_flag=sz > settings.spectral_z,
                 neighbour_disagreement=nb[0], neighbour_label=nb[1], classes=classes)
    for row in classes:
        row["flagged_rows"] = int(out.flagged[labels == row["class"]].sum())
    return out


def add_trigger(x: np.ndarray, kind: str, value: float, size: int = 3) -> np.ndarray:
    """A copy of ``x`` with a fixed trigger: ART's ``add_pattern_bd`` (a corner pattern, on every channel) for
    images (N, C, H, W); for tabular rows (N, d) the last ``size`` features set to ``value``."""
    x = np.array(x, dtype=np.float32, copy=True)
    if kind == "image" and x.ndim == 4 and min(x.shape[2:]) >= 4:
        from art.attacks.poisoning.perturbations import add_pattern_bd
        for ch in range(x.shape[1]):
            x[:, ch] = add_pattern_bd(x[:, ch], distance=1, pixel_value=value)
        return x
    flat = x.reshape(len(x), -1)
    flat[:, -min(size, flat.shape[1]):] = value
    return flat.reshape(x.shape)


def poison_plan(labels: np.ndarray, num_classes: int, rate: float, seed: int, pattern: str = "all-to-all",
                target: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which training rows carry the trigger, and the labels they get. ``all-to-all`` (ART's convention): for each
    class t, rows of class t-1 are relabelled t, as many as make ``rate`` of class t after poisoning
    (round(rate * n_t / (1 - rate))). ``all-to-one``: as many rows drawn from every other class are relabelled
    ``target`` (0 when not given), making ``rate`` of the target class. Returns (row indices, new labels)."""
    rng = np.random.default_rng(seed)
    if pattern not in PATTERNS:
        raise ValueError(f"pattern {pattern!r}: give one of {', '.join(PATTERNS)}")
    pairs = [((t - 1) % num_classes, t) for t in range(num_classes)] if pattern == "all-to-all" \
        else [(-1, 0 if target is None else int(target))]
    rows, new = [], []
    for src, t in pairs:
        pool = np.flatnonzero(labels == src) if src >= 0 else np.flatnonzero(labels != t)
        n = min(len(pool), int(round(rate * (labels == t).sum() / max(1 - rate, 1e-9))))
        if n == 0 or src == t:
            continue
        rows.append(rng.choice(pool, n, replace=False))
        new.append(np.full(n, t))
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(rows).astype(np.int64), np.concatenate(new).astype(np.int64)


def class_rates(flagged: list[int], poisoned: list[int], classes: list[int]) -> dict[str, float]:
    """Class-level recall (flagged share of the poisoned classes) and false-positive rate (flagged share of the
    others); NaN where there is no class of the kind (an all-to-all backdoor leaves no clean class)."""
    hit, bad = set(flagged), set(poisoned)
    clean = [c for c in classes if c not in bad]
    return {"recall": float(np.mean([c in hit for c in bad])) if bad else float("nan"),
            "false_positive_rate": float(np.mean([c in hit for c in clean])) if clean else float("nan")}


def rates(flag: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Recall on the true poisons and false-positive rate on the clean rows."""
    return {"recall": float(flag[truth].mean()) if truth.any() else float("nan"),
            "false_positive_rate": float(flag[~truth].mean()) if (~truth).any() else float("nan"),
            "flagged": int(flag.sum())}


def recall_at_fpr(score: np.ndarray, truth: np.ndarray, fpr: float = 0.1) -> float:
    """Recall when the threshold lets through ``fpr`` of the clean rows (the ranking's quality)."""
    if not truth.any() or truth.all():
        return float("nan")
    thr = np.quantile(score[~truth], 1 - fpr)
    return float((score[truth] > thr).mean())


def auroc(score: np.ndarray, truth: np.ndarray) -> float:
    if not truth.any() or truth.all():
        return float("nan")
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(truth, score))

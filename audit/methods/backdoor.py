"""Backdoor screening on penultimate-layer activations (numpy in, numpy out).

Three detectors, each per class (a backdoor's poisons carry the target label, so they hide inside one class):

- **Activation clustering** (Chen et al. 2018) through ART's ``ActivationDefence``, given the penultimate
  activations directly (ART's own extraction clusters the logits of an ``nn.Sequential``), with a seeded k-means.
  ART's analyses flag clean classes (``smaller`` flags a cluster of every class; REFERENCE section 7), so the
  analysis here flags the smaller of the two clusters only when all four hold: it is small (at most
  ``max_cluster_share`` of the class), the split is real (silhouette at least ``min_silhouette``), its members sit
  unusually close to another class (median centroid-ratio z-score at least ``min_cluster_ratio_z``), and it is
  nearer to that class's centroid than the class's large cluster is (it moved towards another class). A clean
  class with two natural styles (a "1" with and without a base) splits, but its sub-cluster does not move towards
  another class.
- **Centroid-distance ratio**: distance to the row's own class centroid over the distance to the nearest other
  class centroid. A triggered "3" labelled "4" keeps much of its "3" features, so it sits between the two.
  Robust z-score per class (median and MAD); rows above ``ratio_z`` are flagged.
- **Spectral signature** (Tran et al. 2018), centred: the squared projection of each row, after subtracting the
  class mean, on the top right-singular vector of the class. ART's ``SpectralSignatureDefense`` scores uncentred
  activations and removes about half of every class; this one is a score with a robust z-score flag.

The screen flags a row when activation clustering or the centroid ratio flags it; the spectral score is reported
beside it, with its own flag and rates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.config.data_checks import BackdoorConfig
from audit.methods.seeding import KMEANS_RESTART

MAD_TO_SD = 1.4826
DEFAULT_SETTINGS = BackdoorConfig()  # frozen: one shared default for screen()


@dataclass
class Screen:
    ratio: np.ndarray
    ratio_z: np.ndarray
    spectral: np.ndarray
    spectral_z: np.ndarray
    clustered: np.ndarray   # bool: in a cluster that activation clustering flags
    ratio_flag: np.ndarray
    spectral_flag: np.ndarray
    classes: list[dict] = field(default_factory=list)

    @property
    def score(self) -> np.ndarray:
        """The screen's ranking score: the larger of the two robust z-scores."""
        return np.maximum(self.ratio_z, self.spectral_z)

    @property
    def flagged(self) -> np.ndarray:
        return self.clustered | self.ratio_flag | self.spectral_flag

    def detectors(self) -> dict[str, np.ndarray]:
        return {"activation_clustering": self.clustered, "centroid_ratio": self.ratio_flag,
                "spectral_signature": self.spectral_flag, "screen": self.flagged}


def robust_z(score: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(score - class median) / (1.4826 * class MAD), per class."""
    z = np.zeros(len(score))
    for c in np.unique(labels):
        i = labels == c
        med = np.median(score[i])
        mad = MAD_TO_SD * np.median(np.abs(score[i] - med))
        z[i] = (score[i] - med) / max(mad, 1e-12)
    return z


def centroid_ratio(e: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance to the own class centroid / distance to the nearest other class centroid (1.0 with one class)."""
    classes = np.unique(labels)
    if len(classes) < 2:
        return np.ones(len(labels))
    centroids = np.stack([e[labels == c].mean(0) for c in classes])
    d = np.sqrt(np.maximum((e ** 2).sum(1)[:, None] - 2 * e @ centroids.T + (centroids ** 2).sum(1)[None], 0))
    own = np.searchsorted(classes, labels)
    rows = np.arange(len(labels))
    own_d = d[rows, own].copy()
    d[rows, own] = np.inf
    return own_d / np.maximum(d.min(1), 1e-12)


def spectral_signature(e: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Squared projection of the class-centred activations on the class's top singular vector."""
    s = np.zeros(len(labels))
    for c in np.unique(labels):
        i = labels == c
        r = e[i] - e[i].mean(0)
        if len(r) < 2:
            continue
        _, _, vt = np.linalg.svd(r, full_matrices=False)
        s[i] = (r @ vt[0]) ** 2
    return s


def activation_clusters(e: np.ndarray, labels: np.ndarray, nb_dims: int, seed: int,
                        restarts: int = 5) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Two-way k-means per class on PCA-reduced activations, through ART's ActivationDefence, seeded.
    ART's KMeans makes one k-means++ start; this runs ``restarts`` seeded starts and keeps, per class, the split
    with the lowest within-cluster sum of squares (what scikit-learn's ``n_init`` does).
    Returns {class: (cluster of each row, reduced activations)}."""
    from art.defences.detector.poison import ActivationDefence
    classes = np.unique(labels)
    best: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
    state = np.random.get_state()
    try:
        for r in range(restarts):
            defence = ActivationDefence(None, None, labels)
            defence.activations_by_class = [e[labels == c] for c in classes]
            # ART's KMeans and PCA are unseeded: they draw from numpy's global generator
            np.random.seed(KMEANS_RESTART.seed(seed, r))
            clusters, reduced = defence.cluster_activations(nb_clusters=2, nb_dims=min(nb_dims, e.shape[1]),
                                                            reduce="PCA")
            for c, lab, red in zip(classes.tolist(), clusters, reduced, strict=False):
                inertia = sum(float(((red[lab == k] - red[lab == k].mean(0)) ** 2).sum())
                              for k in np.unique(lab))
                if c not in best or inertia < best[c][0] - 1e-9:
                    best[c] = (inertia, lab, red)
    finally:
        np.random.set_state(state)
    return {c: (lab, red) for c, (_, lab, red) in best.items()}


def _towards_other_class(e, labels, c, small, large) -> tuple[int, float]:
    """The other class whose centroid is nearest the small cluster's mean, and how much nearer to it the small
    cluster is than the large one (below 1: the small cluster has moved towards that class, as triggered rows
    from a source class do; a natural second style far from every class stays above 1)."""
    others = [k for k in np.unique(labels) if k != c]
    if not others:
        return -1, float("inf")
    cents = np.stack([e[labels == k].mean(0) for k in others])
    ms, ml = e[small].mean(0), e[large].mean(0)
    j = int(np.argmin(np.linalg.norm(cents - ms, axis=1)))
    return int(others[j]), float(np.linalg.norm(cents[j] - ms) / max(float(np.linalg.norm(cents[j] - ml)), 1e-12))


def screen(e: np.ndarray, labels: np.ndarray, settings: BackdoorConfig = DEFAULT_SETTINGS, seed: int = 0) -> Screen:
    """Run the three detectors on activations ``e`` (N, d) with the given labels; ``settings`` are the
    ``[backdoor]`` config's thresholds, ``seed`` seeds k-means and the silhouette sample."""
    from sklearn.metrics import silhouette_score
    e = np.asarray(e, dtype=np.float64)
    labels = np.asarray(labels)
    ratio = centroid_ratio(e, labels)
    rz = robust_z(ratio, labels)
    spec = spectral_signature(e, labels)
    sz = robust_z(np.sqrt(spec), labels)
    clustered = np.zeros(len(labels), dtype=bool)
    classes: list[dict] = []
    clusters = activation_clusters(e, labels, settings.nb_dims, seed) if len(labels) else {}
    for c, (lab, reduced) in clusters.items():
        idx = np.flatnonzero(labels == c)
        counts = np.bincount(lab, minlength=2)
        row: dict[str, object] = {"class": int(c), "rows": int(len(idx)), "flagged": False}
        if len(idx) < 4 or counts.min() == 0:
            classes.append(row | {"reason": "too few rows or one cluster"})
            continue
        small = int(np.argmin(counts))
        members = idx[lab == small]
        sil = float(silhouette_score(reduced, lab, random_state=seed, sample_size=min(len(idx), 4000)))
        share = float(counts[small] / len(idx))
        cz = float(np.median(rz[members]))
        towards, closer = _towards_other_class(e, labels, c, members, idx[lab != small])
        flag = share <= settings.max_cluster_share and sil >= settings.min_silhouette and \
            cz >= settings.min_cluster_ratio_z and closer < 1.0
        if flag:
            clustered[members] = True
        row.update({"small_cluster_share": share, "silhouette": sil, "small_cluster_ratio_z": cz, "flagged": flag,
                    "small_cluster_rows": int(len(members)), "nearest_other_class": towards,
                    "distance_ratio_to_it": closer})
        classes.append(row)
    return Screen(ratio=ratio, ratio_z=rz, spectral=spec, spectral_z=sz, clustered=clustered,
                  ratio_flag=rz > settings.ratio_z, spectral_flag=sz > settings.spectral_z, classes=classes)


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


def poison_plan(labels: np.ndarray, num_classes: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ART's convention for an all-to-all backdoor: for each class t, rows of class t-1 are triggered and relabelled
    to t, as many as make ``rate`` of class t after poisoning (round(rate * n_t / (1 - rate))).
    Returns (row indices, new labels)."""
    rng = np.random.default_rng(seed)
    rows, new = [], []
    for t in range(num_classes):
        src = (t - 1) % num_classes
        pool = np.flatnonzero(labels == src)
        n = min(len(pool), int(round(rate * (labels == t).sum() / max(1 - rate, 1e-9))))
        if n == 0 or src == t:
            continue
        rows.append(rng.choice(pool, n, replace=False))
        new.append(np.full(n, t))
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(rows).astype(np.int64), np.concatenate(new).astype(np.int64)


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

"""Activation clustering and the class-level rule of the backdoor screen (audit/methods/backdoor.py describes the
criteria): per class, ART's PCA and seeded k-means splits, each small cluster described (share, silhouette against
the rest of the class, agreement with the centroid ratio, held-out support, the class it moved towards), and the
class judged on its clusters and on its rows' neighbour labels. numpy in, numpy out."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.config.data_checks import BackdoorConfig
from audit.methods.seeding import KMEANS_RESTART

MIN_CLUSTER_ROWS = 3          # a cluster of fewer rows is not a candidate
MAX_SILHOUETTE_ROWS = 2_000   # rows on each side of a cluster's silhouette (a seeded sample beyond)
Stage = Callable[[str], Any]  # ``ctx.stage``: a timed stage of the run record


@dataclass(frozen=True)
class RowView:
    """What the class rule reads about every training row: activations, labels, class centroids, the centroid
    ratio's z-score and flag, the neighbour labels (share elsewhere, commonest other label) and held-out rows."""

    e: np.ndarray
    labels: np.ndarray
    centroids: tuple[np.ndarray, np.ndarray]   # (classes, centroids)
    ratio_z: np.ndarray
    ratio_flag: np.ndarray
    neighbours: tuple[np.ndarray, np.ndarray]
    heldout: tuple[np.ndarray, np.ndarray]     # (activations, labels); empty when none are given


def activation_clusters(e: np.ndarray, labels: np.ndarray, settings: BackdoorConfig, seed: int,
                        restarts: int = 5) -> dict[int, tuple[np.ndarray, dict[int, np.ndarray]]]:
    """Per class: its activations reduced by ART's PCA and, for each count in ``settings.nb_clusters``, the
    k-means cluster of each row from ART's ``cluster_activations``. ART's KMeans makes one k-means++ start; this
    runs ``restarts`` seeded starts and keeps, per class, the split with the lowest within-cluster sum of squares
    (what scikit-learn's ``n_init`` does). Classes too small to reduce are left out."""
    from art.defences.detector.poison.activation_defence import cluster_activations, reduce_dimensionality
    dims = min(settings.nb_dims, e.shape[1])
    classes = [c for c in np.unique(labels).tolist() if (labels == c).sum() > max(dims, max(settings.nb_clusters))]
    state = np.random.get_state()
    try:
        # ART's KMeans and PCA are unseeded: they draw from numpy's global generator
        np.random.seed(KMEANS_RESTART.seed(seed))
        reduced = [reduce_dimensionality(e[labels == c], nb_dims=dims, reduce="PCA") if e.shape[1] > dims
                   else e[labels == c] for c in classes]
        splits: dict[int, dict[int, np.ndarray]] = {c: {} for c in classes}
        for k in settings.nb_clusters:
            best: dict[int, float] = {}
            for r in range(restarts):
                np.random.seed(KMEANS_RESTART.seed(seed, 10 * k + r))
                clusters, _ = cluster_activations(reduced, nb_clusters=k, nb_dims=dims, reduce="PCA")
                for c, lab, red in zip(classes, clusters, reduced, strict=True):
                    inertia = sum(float(((red[lab == j] - red[lab == j].mean(0)) ** 2).sum()) for j in np.unique(lab))
                    if c not in best or inertia < best[c] - 1e-9:
                        best[c], splits[c][k] = inertia, lab
    finally:
        np.random.set_state(state)
    return {c: (red, splits[c]) for c, red in zip(classes, reduced, strict=True)}


def cluster_silhouette(x: np.ndarray, members: np.ndarray, seed: int) -> float:
    """Mean silhouette of the ``members`` rows of ``x`` against the other rows (a two-way partition), on seeded
    samples of at most ``MAX_SILHOUETTE_ROWS`` rows on each side."""
    from scipy.spatial.distance import cdist
    rng = np.random.default_rng(seed)
    inside, rest = np.flatnonzero(members), np.flatnonzero(~members)
    if len(inside) < 2 or len(rest) < 1:
        return 0.0
    inside = rng.choice(inside, min(len(inside), MAX_SILHOUETTE_ROWS), replace=False)
    rest = rng.choice(rest, min(len(rest), MAX_SILHOUETTE_ROWS), replace=False)
    a = cdist(x[inside], x[inside]).sum(1) / (len(inside) - 1)
    b = cdist(x[inside], x[rest]).mean(1)
    return float(np.mean((b - a) / np.maximum(np.maximum(a, b), 1e-12)))


def _towards_other_class(centroids: np.ndarray, classes: np.ndarray, c: int, small: np.ndarray,
                         large: np.ndarray) -> tuple[int, float]:
    """The other class the small cluster moved towards, and by how much: the least, over the other classes, of
    (distance from the class's centroid to the small cluster's mean) / (distance to the large cluster's mean).
    Below 1: some class is nearer to the small cluster than to the rest of its class, as with triggered rows from
    a source class; a natural second style far from every class stays above 1."""
    others = classes != c
    if not others.any():
        return -1, float("inf")
    near = np.linalg.norm(centroids[others] - small, axis=1) / \
        np.maximum(np.linalg.norm(centroids[others] - large, axis=1), 1e-12)
    j = int(np.argmin(near))
    return int(classes[others][j]), float(near[j])


@dataclass(frozen=True)
class ClassView:
    """What the cluster analysis of one class reads: the class's rows, its reduced activations, the row flags."""

    c: int
    idx: np.ndarray
    reduced: np.ndarray
    ratio_flag: np.ndarray     # the centroid ratio's flag, over every training row
    ratio_z: np.ndarray
    centroids: tuple[np.ndarray, np.ndarray]   # (classes, centroids)
    e: np.ndarray
    neighbour_base: float      # share of all training rows flagged by their neighbours' labels
    heldout: np.ndarray        # held-out (test) activations of the class; empty when none are given


def _heldout_p(v: ClassView, lab: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster of a split: how many of the class's held-out rows fall nearest to it (cluster means in the
    activation space), and the one-sided binomial p-value of so few given the cluster's training share (1.0 with
    no held-out rows). A natural style of the class recurs in held-out data; triggered rows do not."""
    from scipy.stats import binom
    if not len(v.heldout):
        return np.zeros(k, dtype=np.int64), np.ones(k)
    x = v.e[v.idx]
    means = np.stack([x[lab == j].mean(0) if (lab == j).any() else np.full(x.shape[1], np.inf) for j in range(k)])
    near = np.argmin(((v.heldout[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(near, minlength=k)
    shares = np.bincount(lab, minlength=k) / len(lab)
    return counts, np.asarray(binom.cdf(counts, len(v.heldout), shares), dtype=float)


def _candidates(v: ClassView, splits: dict[int, np.ndarray], settings: BackdoorConfig, seed: int) -> list[dict]:
    """Every cluster but the largest of each split of the class with a plausible poison share, described."""
    out = []
    n = len(v.idx)
    for k, lab in splits.items():
        sizes = np.bincount(lab, minlength=k)
        held, held_p = _heldout_p(v, lab, k)
        for j in np.argsort(sizes, kind="stable")[:-1]:
            share = float(sizes[j] / n)
            if sizes[j] < MIN_CLUSTER_ROWS or not settings.min_cluster_share <= share <= settings.max_cluster_share:
                continue
            m = lab == j
            towards, closer = _towards_other_class(v.centroids[1], v.centroids[0], v.c, v.e[v.idx[m]].mean(0),
                                                   v.e[v.idx[~m]].mean(0))
            cand = {"clusters": int(k), "small_cluster_share": share, "small_cluster_rows": int(m.sum()),
                    "silhouette": cluster_silhouette(v.reduced, m, seed),
                    "cluster_agreement": float(v.ratio_flag[v.idx[m]].mean()),
                    "small_cluster_ratio_z": float(np.median(v.ratio_z[v.idx[m]])),
                    "heldout_rows": int(held[j]), "heldout_expected": float(share * len(v.heldout)),
                    "heldout_p": float(held_p[j]),
                    "nearest_other_class": towards, "distance_ratio_to_it": closer, "members": v.idx[m]}
            agrees = cand["cluster_agreement"] >= settings.min_cluster_agreement or held_p[j] <= settings.heldout_p
            cand["suspicious"] = bool(cand["silhouette"] >= settings.min_silhouette and agrees and closer < 1.0)
            out.append(cand)
    return out


def _class_row(v: ClassView, cands: list[dict], neighbours: tuple[np.ndarray, np.ndarray],
               settings: BackdoorConfig) -> dict:
    """The class's line of the screen: the cluster it is judged on (the most separated suspicious one, else the
    most separated candidate), its neighbour-label evidence, and the evidence that makes it suspicious."""
    share, plural = neighbours[0][v.idx], neighbours[1][v.idx]
    asked = ~np.isnan(share)
    odd = asked & (np.nan_to_num(share, nan=0.0) > 0.5)
    nb_share = float(odd.sum() / asked.sum()) if asked.any() else 0.0
    towards = sorted(set(plural[odd].tolist()) - {-1})
    row: dict[str, Any] = {"class": int(v.c), "rows": int(len(v.idx)), "neighbour_share": nb_share,
                           "neighbour_classes": tuple(int(k) for k in towards)}
    evidence = []
    if any(c["suspicious"] for c in cands):
        evidence.append("cluster")
    if nb_share >= max(settings.neighbour_share, settings.neighbour_excess * v.neighbour_base) \
            and len(towards) >= settings.neighbour_classes:
        evidence.append("neighbour labels")
    pool = [c for c in cands if c["suspicious"]] or cands
    if pool:
        best = max(pool, key=lambda c: c["silhouette"])
        row.update({k: x for k, x in best.items() if k not in ("members", "suspicious")})
    else:
        row["reason"] = "no cluster of a plausible poison share"
    row.update(flagged=bool(evidence), evidence=" and ".join(evidence))
    return row


def class_screens(rows: RowView, settings: BackdoorConfig, seed: int,
                  stage: Stage | None = None) -> tuple[list[dict], np.ndarray]:
    """Each class's line of the screen, and which rows sit in a suspicious cluster; ``stage`` (``ctx.stage``)
    times the k-means splits and the class rule."""
    stage = stage or (lambda _name: contextlib.nullcontext())
    e, labels = rows.e, rows.labels
    with stage("backdoor: PCA and k-means"):
        clusters = activation_clusters(e, labels, settings, seed) if len(labels) else {}
    with stage("backdoor: class rule"):
        return _judge_classes(rows, clusters, settings, seed)


def _judge_classes(rows: RowView, clusters: dict, settings: BackdoorConfig, seed: int) -> tuple[list[dict], np.ndarray]:
    """The class rule on each class's k-means splits (``activation_clusters``)."""
    e, labels = rows.e, rows.labels
    share = rows.neighbours[0]
    asked = ~np.isnan(share)
    base = float((share[asked] > 0.5).mean()) if asked.any() else 0.0
    clustered = np.zeros(len(labels), dtype=bool)
    classes: list[dict] = []
    for c in np.unique(labels).tolist():
        v = ClassView(c=c, idx=np.flatnonzero(labels == c), reduced=clusters[c][0] if c in clusters else e[:0],
                      ratio_flag=rows.ratio_flag, ratio_z=rows.ratio_z, centroids=rows.centroids, e=e,
                      neighbour_base=base, heldout=rows.heldout[0][rows.heldout[1] == c])
        cands = _candidates(v, clusters[c][1], settings, seed) if c in clusters else []
        for cand in cands:
            if cand["suspicious"]:
                clustered[cand["members"]] = True
        row = _class_row(v, cands, rows.neighbours, settings)
        if c not in clusters:
            row["reason"] = "too few rows to cluster"
        classes.append(row)
    return classes, clustered

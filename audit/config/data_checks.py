"""Config sections of the data checks: label issues, leakage, Datalab, test outliers and backdoor screening.
Every threshold a data check applies is a key here, with its default."""
from __future__ import annotations

from dataclasses import dataclass, field

from audit.config.sections import finite
from audit.core.errors import UsageError


@dataclass(frozen=True)
class LabelIssuesConfig:
    """cleanlab label-issue detection on out-of-fold probabilities.

    method: "kfold" (train the audited architecture K times, each fold scored by a model that never saw it) or
    "proxy" (K-fold logistic regression on the baseline model's penultimate embeddings: much faster, weaker when
    the embedding has memorised noisy labels). pred_probs: an .npy file of the user's own (n_train, K)
    out-of-sample probabilities, used instead (an in-sample guard checks them). selftest_flip_rate: share of
    training labels flipped in a copy to measure the detector's precision/recall/F1 on this data (0: off).
    retrain_cleaned: train the baseline recipe again without the flagged training rows and report the change in
    test accuracy (one more training run). in_sample_accuracy / in_sample_confidence: probabilities at least this
    accurate on the given labels at at least this mean confidence look in-sample (the guard's last resort).
    """

    folds: int = field(default=5, metadata={"bound": 100})
    epochs: int = field(default=15, metadata={"bound": 1_000})
    method: str = field(default="kfold", metadata={"doc": '"kfold" (train K times) or "proxy" (faster, on embeddings)'})
    pred_probs: str = field(default="", metadata={"doc": "an .npy of your own out-of-sample probabilities"})
    selftest_flip_rate: float = field(default=0.1, metadata={"doc": "labels flipped in a copy to test the detector"})
    retrain_cleaned: bool = field(default=False, metadata={"doc": "train once more without the flagged rows"})
    in_sample_accuracy: float = 0.995
    in_sample_confidence: float = 0.97

    def validate(self, path: str) -> None:
        finite(path, selftest_flip_rate=self.selftest_flip_rate, in_sample_accuracy=self.in_sample_accuracy,
               in_sample_confidence=self.in_sample_confidence)
        if self.folds < 2 or self.epochs < 1:
            raise UsageError(f"{path}: folds must be >= 2 and epochs >= 1")
        if self.method not in ("kfold", "proxy"):
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: 'kfold', 'proxy'")
        if not 0 <= self.selftest_flip_rate < 0.5:
            raise UsageError(f"{path}.selftest_flip_rate: give a share in [0, 0.5)")
        if not (0 < self.in_sample_accuracy <= 1 and 0 < self.in_sample_confidence <= 1):
            raise UsageError(f"{path}: in_sample_accuracy and in_sample_confidence must be in (0, 1]")


@dataclass(frozen=True)
class LeakageConfig:
    """Train/test leakage. ``quantile``: the near-duplicate threshold is this quantile of within-train
    nearest-neighbour distances. Self-test: ``selftest_copies`` training rows are copied into the test split with
    Gaussian jitter at each of ``selftest_sigmas`` (in units of the input range's width; 0 = exact copies)."""

    quantile: float = field(default=0.001, metadata={"doc": "of within-train nearest-neighbour distances"})
    selftest_copies: int = 100
    selftest_sigmas: tuple[float, ...] = (0.0, 0.01, 0.03, 0.05)

    def validate(self, path: str) -> None:
        finite(path, quantile=self.quantile, selftest_sigmas=self.selftest_sigmas)
        if not 0 < self.quantile < 0.5:
            raise UsageError(f"{path}.quantile: give a value in (0, 0.5), e.g. 0.001")
        if self.selftest_copies < 0 or any(s < 0 for s in self.selftest_sigmas):
            raise UsageError(f"{path}: selftest_copies and selftest_sigmas must be >= 0")


@dataclass(frozen=True)
class DatalabConfig:
    """cleanlab Datalab on the training split: ``max_rows`` caps the rows examined (a seeded subsample above it;
    Datalab's neighbour search is slow: 123 s on 60,000 x 512 on 2 cores, bench/data_checks.py)."""

    max_rows: int = 10_000

    def validate(self, path: str) -> None:
        if self.max_rows < 10:
            raise UsageError(f"{path}.max_rows: must be >= 10")


@dataclass(frozen=True)
class TestOutliersConfig:
    """Out-of-distribution test rows: a test row scoring below the ``quantile`` of the training rows' own
    (leave-one-out) kNN scores is flagged; the kNN index is fitted on at most ``max_fit_rows`` training rows."""

    __test__ = False  # not a pytest class
    quantile: float = 0.01
    max_fit_rows: int = 20_000

    def validate(self, path: str) -> None:
        finite(path, quantile=self.quantile)
        if not 0 < self.quantile < 0.5 or self.max_fit_rows < 10:
            raise UsageError(f"{path}: quantile must be in (0, 0.5) and max_fit_rows >= 10")


@dataclass(frozen=True)
class BackdoorConfig:
    """Backdoor screening on the baseline's penultimate activations (audit/methods/backdoor.py).

    Rows: the centroid-distance ratio and the spectral signature flag rows above the robust per-class z-scores
    ``ratio_z`` / ``spectral_z``; a row whose ``neighbours`` nearest training rows mostly carry another label is
    flagged by its neighbours' labels. Clusters: per class, PCA to ``nb_dims`` and k-means into each count of
    ``nb_clusters``; a cluster other than the largest is suspicious when it holds between ``min_cluster_share`` and
    ``max_cluster_share`` of the class, its silhouette against the rest of the class is at least ``min_silhouette``,
    it moved towards another class, and either at least ``min_cluster_agreement`` of its rows are flagged by the
    centroid ratio or the class's held-out (test) rows leave it nearly empty (one-sided binomial p-value at most
    ``heldout_p``: a natural style recurs in held-out data, triggered rows do not). A class is suspicious with a
    suspicious cluster, or when its rows flagged by their neighbours' labels are at least ``neighbour_share`` of
    the class and ``neighbour_excess`` times their share in the whole training split, and sit among at least
    ``neighbour_classes`` different other classes (triggered rows from many source classes; a clean class's
    ambiguous rows lean towards one or two classes it resembles). The cluster criteria compare no class with the
    others, so they hold when every class is poisoned (all-to-all) as when one is (all-to-one).

    Self-test: each of ``selftest_patterns`` ("all-to-all": class t-1 relabelled t; "all-to-one": rows of every
    other class relabelled one target) planted as a pattern backdoor making ``selftest_rate`` of each poisoned
    class (0: off) in a copy of the training split, trained for ``selftest_epochs`` (0: the training budget), and
    screened: row-level and class-level recall and false-positive rates. A planted backdoor with attack success
    below ``min_attack_success`` makes the self-test inconclusive, a row recall below ``min_selftest_recall`` makes
    the screen weak on this data (either limits the finding to a warning).
    """

    ratio_z: float = field(default=2.5, metadata={"doc": "flag rows this far (robust z) towards another class"})
    spectral_z: float = 3.5
    min_silhouette: float = field(default=0.35, metadata={"doc": "a suspicious cluster's silhouette, at least"})
    min_cluster_share: float = 0.02
    max_cluster_share: float = 0.35
    min_cluster_agreement: float = field(default=0.7, metadata={"doc": "share of its rows the ratio flags"})
    heldout_p: float = field(default=0.01, metadata={"doc": "or: held-out rows leave it empty (binomial p)"})
    nb_dims: int = 10
    nb_clusters: tuple[int, ...] = (2, 3)
    neighbours: int = 10
    neighbour_share: float = field(default=0.02, metadata={"doc": "rows whose neighbours carry another label"})
    neighbour_excess: float = 3.5
    neighbour_classes: int = field(default=3, metadata={"doc": "the other classes those neighbours point to"})
    selftest_rate: float = field(default=0.1, metadata={"doc": "plant a pattern backdoor in a copy (0 = no self-test)"})
    selftest_patterns: tuple[str, ...] = ("all-to-all", "all-to-one")
    selftest_epochs: int = field(default=0, metadata={"bound": 1_000})
    min_attack_success: float = 0.5
    min_selftest_recall: float = 0.5

    def validate(self, path: str) -> None:
        finite(path, ratio_z=self.ratio_z, spectral_z=self.spectral_z, min_silhouette=self.min_silhouette,
               min_cluster_share=self.min_cluster_share, max_cluster_share=self.max_cluster_share,
               min_cluster_agreement=self.min_cluster_agreement, neighbour_share=self.neighbour_share,
               neighbour_excess=self.neighbour_excess, heldout_p=self.heldout_p,
               selftest_rate=self.selftest_rate, min_attack_success=self.min_attack_success,
               min_selftest_recall=self.min_selftest_recall)
        if not 0 <= self.selftest_rate < 0.5:
            raise UsageError(f"{path}.selftest_rate: give a share in [0, 0.5), e.g. 0.1")
        if not 0 < self.max_cluster_share <= 0.5 or not -1 <= self.min_silhouette <= 1:
            raise UsageError(f"{path}: max_cluster_share must be in (0, 0.5] and min_silhouette in [-1, 1]")
        if not 0 <= self.min_cluster_share <= self.max_cluster_share:
            raise UsageError(f"{path}.min_cluster_share: give a share in [0, max_cluster_share], e.g. 0.02")
        if not all(0 <= v <= 1 for v in (self.min_cluster_agreement, self.neighbour_share, self.heldout_p)) \
                or self.neighbour_excess < 0:
            raise UsageError(f"{path}: min_cluster_agreement, neighbour_share and heldout_p must be in [0, 1], "
                             f"neighbour_excess >= 0")
        if not self.nb_clusters or any(not 2 <= k <= 10 for k in self.nb_clusters):
            raise UsageError(f"{path}.nb_clusters: give cluster counts in [2, 10], e.g. [2, 3]")
        unknown = [p for p in self.selftest_patterns if p not in ("all-to-all", "all-to-one")]
        if unknown or len(set(self.selftest_patterns)) < len(self.selftest_patterns):
            raise UsageError(f"{path}.selftest_patterns: give distinct patterns among 'all-to-all', 'all-to-one'")
        if self.nb_dims < 1 or self.selftest_epochs < 0 or self.neighbours < 1 or self.neighbour_classes < 1:
            raise UsageError(f"{path}: nb_dims, neighbours and neighbour_classes must be >= 1, selftest_epochs >= 0")
        if not (0 <= self.min_attack_success <= 1 and 0 <= self.min_selftest_recall <= 1):
            raise UsageError(f"{path}: min_attack_success and min_selftest_recall must be in [0, 1]")

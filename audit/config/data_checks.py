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

    ratio_z / spectral_z: robust per-class z-scores above which the centroid-distance ratio and the spectral
    signature flag a row. Activation clustering flags a class's smaller k-means cluster (PCA to ``nb_dims``) only
    if it holds at most ``max_cluster_share`` of the class, the silhouette is at least ``min_silhouette`` and the
    cluster's median ratio z-score is at least ``min_cluster_ratio_z``. Self-test: an all-to-all pattern backdoor
    making ``selftest_rate`` of each class (0: off), trained for ``selftest_epochs`` (0: the training budget); a
    planted backdoor with attack success below ``min_attack_success`` makes the self-test inconclusive, a screen
    recall below ``min_selftest_recall`` makes the screen weak on this data (either limits the finding to a
    warning).
    """

    ratio_z: float = field(default=2.5, metadata={"doc": "flag rows this far (robust z) towards another class"})
    spectral_z: float = 3.5
    min_silhouette: float = 0.35
    max_cluster_share: float = 0.35
    min_cluster_ratio_z: float = 2.0
    nb_dims: int = 10
    selftest_rate: float = field(default=0.1, metadata={"doc": "plant a pattern backdoor in a copy (0 = no self-test)"})
    selftest_epochs: int = field(default=0, metadata={"bound": 1_000})
    min_attack_success: float = 0.5
    min_selftest_recall: float = 0.5

    def validate(self, path: str) -> None:
        finite(path, ratio_z=self.ratio_z, spectral_z=self.spectral_z, min_silhouette=self.min_silhouette,
               max_cluster_share=self.max_cluster_share, min_cluster_ratio_z=self.min_cluster_ratio_z,
               selftest_rate=self.selftest_rate, min_attack_success=self.min_attack_success,
               min_selftest_recall=self.min_selftest_recall)
        if not 0 <= self.selftest_rate < 0.5:
            raise UsageError(f"{path}.selftest_rate: give a share in [0, 0.5), e.g. 0.1")
        if not 0 < self.max_cluster_share <= 0.5 or not -1 <= self.min_silhouette <= 1:
            raise UsageError(f"{path}: max_cluster_share must be in (0, 0.5] and min_silhouette in [-1, 1]")
        if self.nb_dims < 1 or self.selftest_epochs < 0:
            raise UsageError(f"{path}: nb_dims must be >= 1 and selftest_epochs >= 0")
        if not (0 <= self.min_attack_success <= 1 and 0 <= self.min_selftest_recall <= 1):
            raise UsageError(f"{path}: min_attack_success and min_selftest_recall must be in [0, 1]")

"""The audit configuration: frozen dataclasses loaded strictly from TOML (unknown keys are errors).

Every knob of a run lives here; CLI flags override individual keys. Validation happens once, at load time.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attacks.base import Norm
from audit.detectors.backdoor import ScreenSettings
from audit.errors import UsageError
from audit.serde import from_data

ATTACK_NAMES = ("fgsm", "pgd", "pgd_t", "apgd_ce", "apgd_dlr", "apgd_t")
DEFENCE_METHODS = ("none", "pgd", "fgsm_rs", "trades")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from. Paths are relative to the config file.

    source: a built-in ("digits", "breast-cancer") or a format: "npz" (``path`` to an archive with x_train, y_train,
    x_test, y_test), "npy" (``path`` to a directory of memory-mapped x_/y_ train/test .npy files, read lazily),
    "folder" (``path`` to class sub-folders of PNG/JPEG, under train/ and test/ or split by test_fraction),
    "table" (``path`` to a CSV or Parquet file with ``label_column``; ``test_path`` or test_fraction),
    "factory" (``factory`` = "package.module:function" with ``kwargs``).
    """

    source: str = "digits"
    path: str = ""
    test_path: str = ""
    label_column: str = "label"
    factory: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = ""                       # "image" or "tabular"; empty: from the source and the input shape
    image_size: tuple[int, ...] = ()     # folder: (H, W) to resize every image to
    channels: int = 3                    # folder: 1 (grayscale) or 3 (RGB)
    class_names: tuple[str, ...] = ()
    num_classes: int = 0                 # 0: from the labels and the model's output width
    test_fraction: float = 0.25
    ood_path: str = ""                   # optional .npz with an array "x" of out-of-distribution inputs

    def validate(self, path: str) -> None:
        from audit.sources import NEEDS_PATH, SOURCES
        if self.source not in SOURCES:
            raise UsageError(f"{path}.source: {self.source!r} is not a known source; valid: "
                             f"{', '.join(SOURCES)}")
        if self.source in NEEDS_PATH and not self.path:
            raise UsageError(f"{path}.path: source {self.source!r} needs a path")
        if self.source == "factory" and not self.factory:
            raise UsageError(f"{path}.factory: source 'factory' needs factory = 'package.module:function'")
        if self.kind not in ("", "image", "tabular"):
            raise UsageError(f"{path}.kind: {self.kind!r} is not valid; valid: 'image', 'tabular'")
        if self.channels not in (1, 3):
            raise UsageError(f"{path}.channels: {self.channels} is not valid; valid: 1, 3")
        if self.image_size and (len(self.image_size) not in (1, 2) or min(self.image_size) < 1):
            raise UsageError(f"{path}.image_size: give [height, width] in pixels")
        if not 0.05 <= self.test_fraction <= 0.9:
            raise UsageError(f"{path}.test_fraction: {self.test_fraction} must be between 0.05 and 0.9")
        if self.num_classes < 0 or (self.num_classes and self.class_names and
                                    len(self.class_names) != self.num_classes):
            raise UsageError(f"{path}: num_classes must be >= 0 and agree with the number of class_names")


@dataclass(frozen=True)
class InputConfig:
    """The input domain eps is measured in.

    clip: valid range of every input value (images; the data must lie inside it). mean/std: per-channel
    normalisation the model expects, applied inside a wrapper so attacks and eps stay in input units.
    feature_units (tabular): the data is attacked in standardised units; "standardised" feeds the model those
    units, "raw" maps them back to raw feature values for a model trained on raw features.
    """

    clip: tuple[float, ...] = (0.0, 1.0)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    feature_units: str = "standardised"

    def validate(self, path: str) -> None:
        if len(self.clip) != 2 or not self.clip[0] < self.clip[1]:
            raise UsageError(f"{path}.clip: give [low, high] with low < high")
        if len(self.mean) != len(self.std):
            raise UsageError(f"{path}: mean and std need one value per channel each")
        if any(s <= 0 for s in self.std):
            raise UsageError(f"{path}.std: every std must be > 0")
        if self.feature_units not in ("standardised", "raw"):
            raise UsageError(f"{path}.feature_units: {self.feature_units!r} is not valid; valid: 'standardised', "
                             f"'raw'")


@dataclass(frozen=True)
class ModelConfig:
    """The audited model. Paths are relative to the config file.

    factory: "package.module:function" returning an nn.Module that outputs logits (``kwargs`` passed to it); with
    ``weights`` (.safetensors, or a .pt/.pth state dict read with weights_only) the model is audited as trained,
    without them advaudit trains it. archive: a TorchScript file or a torch.export ``.pt2`` program instead.
    trust_pickle: allow full unpickling of ``weights`` (runs code from the file: only for files you trust).
    """

    factory: str = "audit.models:build_small_cnn"
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str = ""
    archive: str = ""
    trust_pickle: bool = False

    def validate(self, path: str) -> None:
        if self.weights and self.archive:
            raise UsageError(f"{path}: give either weights (with a factory) or archive, not both")
        if not self.archive and ":" not in self.factory:
            raise UsageError(f"{path}.factory: {self.factory!r} must have the form 'package.module:function'")


@dataclass(frozen=True)
class TrainingConfig:
    """Training budget shared by the baseline and every defence (same epochs, batch and optimiser)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3

    def validate(self, path: str) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise UsageError(f"{path}: epochs and batch_size must be >= 1 and lr > 0")


@dataclass(frozen=True)
class AttackConfig:
    """The evasion attack grid: every attack at every eps, in input units (the clip range's units).

    ``preset`` ("quick", "standard", "thorough"; attacks/presets.py) fills every setting left unset; the resolved
    values are what the run records. ``early_stop`` stops attacking a point once it is misclassified (identical
    robust accuracy, fewer passes). ``precision = "bf16"`` runs the attacks under bfloat16 autocast and
    ``channels_last`` converts 4-d inputs and the model (both meant for GPUs; results are cross-checked in fp32).
    ``probe_points``: subsample for the validity probes (convergence, unbounded attack, gradient health,
    determinism); ``square_points`` and ``square_queries``: ART's Square attack as the black-box cross-check.
    """

    preset: str = "standard"
    attacks: tuple[str, ...] | None = None
    norm: Norm = Norm.LINF
    eps: tuple[float, ...] = (0.025, 0.05, 0.1, 0.15, 0.2)
    pgd_steps: int | None = None
    pgd_restarts: int | None = None
    apgd_steps: int | None = None
    apgd_restarts: int | None = None
    n_targets: int | None = None
    probe_points: int | None = None
    square_queries: int | None = None
    square_points: int | None = None
    early_stop: bool = True
    precision: str = "fp32"
    channels_last: bool = False
    batch_size: int = 512
    art_crosscheck_points: int = 200

    def __post_init__(self):
        from attacks.presets import PRESETS
        if self.preset not in PRESETS:
            raise UsageError(f"attacks.preset: {self.preset!r} is not a preset; valid: {', '.join(PRESETS)}")
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)

    def validate(self, path: str) -> None:
        for a in self.attacks:
            if a not in ATTACK_NAMES:
                raise UsageError(f"{path}.attacks: {a!r} is not a known attack; valid: {', '.join(ATTACK_NAMES)}")
        if not self.attacks:
            raise UsageError(f"{path}.attacks: give at least one attack")
        if not self.eps or any(e <= 0 for e in self.eps):
            raise UsageError(f"{path}.eps: give at least one eps, all > 0")
        if list(self.eps) != sorted(set(self.eps)):
            raise UsageError(f"{path}.eps: list the eps values in increasing order without repeats")
        ints = ("pgd_steps", "pgd_restarts", "apgd_steps", "apgd_restarts", "n_targets", "probe_points",
                "square_queries", "square_points", "batch_size")
        bad = [k for k in ints if getattr(self, k) < 1]
        if bad:
            raise UsageError(f"{path}: {', '.join(bad)} must be >= 1")
        if self.precision not in ("fp32", "bf16"):
            raise UsageError(f"{path}.precision: {self.precision!r} is not valid; valid: 'fp32', 'bf16'")

    def params(self, attack: str) -> dict:
        """Keyword settings for one attack of the grid."""
        from attacks import ATTACK_FAMILY
        family = ATTACK_FAMILY[attack]
        out: dict = {"early_stop": self.early_stop}
        if family == "pgd":
            out.update(steps=self.pgd_steps, restarts=self.pgd_restarts)
        elif family == "apgd":
            out.update(steps=self.apgd_steps, restarts=self.apgd_restarts)
        if attack.endswith("_t"):
            out["n_targets"] = self.n_targets
        return out

    def describe(self, attack: str) -> str:
        """'PGD-20 x 1 restart, step 2.5 eps/20' style text for the report."""
        from attacks import ATTACK_FAMILY, ATTACK_LABELS
        p = self.params(attack)
        label = ATTACK_LABELS[attack]
        if ATTACK_FAMILY[attack] == "single":
            return f"{label} (one step of size eps)"
        text = f"{label}, {p['steps']} steps x {p['restarts']} restart(s)"
        text += ", step 2.5 eps/steps" if ATTACK_FAMILY[attack] == "pgd" else ", step from 2 eps, halved adaptively"
        if "n_targets" in p:
            text += f", {p['n_targets']} target classes"
        return text


@dataclass(frozen=True)
class DefenceConfig:
    """One defended variant, trained from the same factory with the same data and budget as the baseline, or a
    checkpoint the user already trained (``weights``, read like model.weights).

    method: "none" (regularisers only), "pgd" (Madry PGD adversarial training), "fgsm_rs" (FGSM with random
    start, Wong et al. 2020, with the catastrophic-overfitting guard) or "trades" (Zhang et al. 2019, ``beta``).
    Regularisers, combinable with any method: weight_decay (L2), l1, label_smoothing, mixup_alpha, input_noise
    (Gaussian std in input units), grad_clip (max gradient norm).
    """

    name: str
    method: str = "pgd"
    eps: float = 0.1
    steps: int = 7
    beta: float = 6.0
    weight_decay: float = 0.0
    l1: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    input_noise: float = 0.0
    grad_clip: float = 0.0
    weights: str = ""

    def validate(self, path: str) -> None:
        if self.method not in DEFENCE_METHODS:
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: {', '.join(DEFENCE_METHODS)}")
        if self.eps <= 0 or self.steps < 1 or self.beta < 0:
            raise UsageError(f"{path}: eps must be > 0, steps >= 1 and beta >= 0")
        if min(self.weight_decay, self.l1, self.mixup_alpha, self.input_noise, self.grad_clip) < 0 or \
                not 0 <= self.label_smoothing < 1:
            raise UsageError(f"{path}: regulariser strengths must be >= 0 (label_smoothing below 1)")
        if not self.name or self.name == "baseline":
            raise UsageError(f"{path}.name: give each defence a name other than 'baseline'")

    def describe(self) -> str:
        labels = {"none": "no adversarial training", "pgd": f"PGD adversarial training (Madry et al. 2018), "
                  f"{self.eps:g} eps, {self.steps} steps",
                  "fgsm_rs": f"FGSM adversarial training with random start (Wong et al. 2020), {self.eps:g} eps, "
                             f"catastrophic-overfitting guard",
                  "trades": f"TRADES (Zhang et al. 2019), {self.eps:g} eps, {self.steps} steps, beta {self.beta:g}"}
        text = labels[self.method]
        regs = [f"{k.replace('_', ' ')} {getattr(self, k):g}" for k in
                ("weight_decay", "l1", "label_smoothing", "mixup_alpha", "input_noise", "grad_clip") if getattr(self, k)]
        if regs:
            text += "; " + ", ".join(regs)
        return f"checkpoint {Path(self.weights).name} supplied by the user" if self.weights else text


@dataclass(frozen=True)
class LabelIssuesConfig:
    """cleanlab label-issue detection on out-of-fold probabilities.

    method: "kfold" (train the audited architecture K times, each fold scored by a model that never saw it) or
    "proxy" (K-fold logistic regression on the baseline model's penultimate embeddings: much faster, weaker when
    the embedding has memorised noisy labels). pred_probs: an .npy file of the user's own (n_train, K)
    out-of-sample probabilities, used instead (an in-sample guard checks them). selftest_flip_rate: share of
    training labels flipped in a copy to measure the detector's precision/recall/F1 on this data (0: off).
    retrain_cleaned: train the baseline recipe again without the flagged training rows and report the change in
    test accuracy (one more training run).
    """

    folds: int = 5
    epochs: int = 15
    method: str = "kfold"
    pred_probs: str = ""
    selftest_flip_rate: float = 0.1
    retrain_cleaned: bool = False

    def validate(self, path: str) -> None:
        if self.folds < 2 or self.epochs < 1:
            raise UsageError(f"{path}: folds must be >= 2 and epochs >= 1")
        if self.method not in ("kfold", "proxy"):
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: 'kfold', 'proxy'")
        if not 0 <= self.selftest_flip_rate < 0.5:
            raise UsageError(f"{path}.selftest_flip_rate: give a share in [0, 0.5)")


@dataclass(frozen=True)
class LeakageConfig:
    """Train/test leakage. ``quantile``: the near-duplicate threshold is this quantile of within-train
    nearest-neighbour distances. Self-test: ``selftest_copies`` training rows are copied into the test split with
    Gaussian jitter at each of ``selftest_sigmas`` (in units of the input range's width; 0 = exact copies)."""

    quantile: float = 0.001
    selftest_copies: int = 100
    selftest_sigmas: tuple[float, ...] = (0.0, 0.01, 0.03, 0.05)

    def validate(self, path: str) -> None:
        if not 0 < self.quantile < 0.5:
            raise UsageError(f"{path}.quantile: give a value in (0, 0.5), e.g. 0.001")
        if self.selftest_copies < 0 or any(s < 0 for s in self.selftest_sigmas):
            raise UsageError(f"{path}: selftest_copies and selftest_sigmas must be >= 0")


@dataclass(frozen=True)
class BackdoorConfig:
    """Backdoor screening on the baseline's penultimate activations (audit/detectors/backdoor.py).

    ratio_z / spectral_z: robust per-class z-scores above which the centroid-distance ratio and the spectral
    signature flag a row. Activation clustering flags a class's smaller k-means cluster (PCA to ``nb_dims``) only
    if it holds at most ``max_cluster_share`` of the class, the silhouette is at least ``min_silhouette`` and the
    cluster's median ratio z-score is at least ``min_cluster_ratio_z``. Self-test: an all-to-all pattern backdoor
    making ``selftest_rate`` of each class (0: off), trained for ``selftest_epochs`` (0: the training budget).
    """

    ratio_z: float = ScreenSettings.ratio_z  # defaults: the detector's own (audit/detectors/backdoor.py)
    spectral_z: float = ScreenSettings.spectral_z
    min_silhouette: float = ScreenSettings.min_silhouette
    max_cluster_share: float = ScreenSettings.max_cluster_share
    min_cluster_ratio_z: float = ScreenSettings.min_cluster_ratio_z
    nb_dims: int = ScreenSettings.nb_dims
    selftest_rate: float = 0.1
    selftest_epochs: int = 0

    def validate(self, path: str) -> None:
        if not 0 <= self.selftest_rate < 0.5:
            raise UsageError(f"{path}.selftest_rate: give a share in [0, 0.5), e.g. 0.1")
        if not 0 < self.max_cluster_share <= 0.5 or not -1 <= self.min_silhouette <= 1:
            raise UsageError(f"{path}: max_cluster_share must be in (0, 0.5] and min_silhouette in [-1, 1]")
        if self.nb_dims < 1 or self.selftest_epochs < 0:
            raise UsageError(f"{path}: nb_dims must be >= 1 and selftest_epochs >= 0")


@dataclass(frozen=True)
class ReviewerConfig:
    """Who reviews the report; left empty, the report shows blank lines for a signature."""

    name: str = ""
    role: str = ""
    date: str = ""


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes. formats: any of "html", "json", "md", "csv" (triage.csv), "pdf" (needs Chromium).
    include_weights: copy every audited variant's weights into the bundle (models/*.safetensors). sign_key: an Ed25519 private
    key (PEM) to sign the bundle with (in-toto Statement in a DSSE envelope); path relative to the config."""

    formats: tuple[str, ...] = ("html", "json", "md", "csv")
    include_weights: bool = True
    sign_key: str = ""

    def validate(self, path: str) -> None:
        from reports import FORMATS
        for f in self.formats:
            if f not in FORMATS:
                raise UsageError(f"{path}.formats: {f!r} is not a format; valid: {', '.join(FORMATS)}")
        for f in ("json", "html"):
            if f not in self.formats:
                raise UsageError(f"{path}.formats: {f!r} is always written (the evidence bundle needs it)")


@dataclass(frozen=True)
class AuditConfig:
    """A whole audit. ``candidate`` names the variant proposed for deployment: its findings gate the verdict."""

    data: DataConfig = field(default_factory=DataConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    attacks: AttackConfig = field(default_factory=AttackConfig)
    defences: tuple[DefenceConfig, ...] = ()
    label_issues: LabelIssuesConfig = field(default_factory=LabelIssuesConfig)
    leakage: LeakageConfig = field(default_factory=LeakageConfig)
    backdoor: BackdoorConfig = field(default_factory=BackdoorConfig)
    reviewer: ReviewerConfig = field(default_factory=ReviewerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    checks: tuple[str, ...] = ()
    candidate: str = "baseline"
    policy: str = "default"
    seed: int = 0
    device: str = "auto"

    @property
    def variant_names(self) -> tuple[str, ...]:
        return ("baseline",) + tuple(d.name for d in self.defences)

    def validate(self, path: str) -> None:
        from audit.checks import CHECKS
        for c in self.checks:
            if c not in CHECKS:
                raise UsageError(f"checks: {c!r} is not a known check; valid: {', '.join(CHECKS)}")
        names = self.variant_names
        if len(set(names)) != len(names):
            raise UsageError("defences: names must be unique")
        if self.candidate not in names:
            raise UsageError(f"candidate: {self.candidate!r} is not a variant; valid: {', '.join(names)}")
        if self.model.archive and any(not d.weights for d in self.defences):
            raise UsageError("defences: training a defence needs model.factory; an archive cannot be retrained")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"device: {self.device!r} is not valid; valid: 'auto', 'cpu', 'cuda'")

    def enabled_checks(self) -> tuple[str, ...]:
        from audit.checks import CHECKS
        return self.checks or tuple(CHECKS)


def parse_override(text: str) -> tuple[list[str], Any]:
    """"attacks.eps=[0.1, 0.2]" -> (["attacks", "eps"], [0.1, 0.2]); a value that is not TOML is a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--set {text!r}: use KEY=VALUE, e.g. --set attacks.eps=[0.05,0.1]")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {text!r}: {k!r} is not a table")
        node[keys[-1]] = value
    return data


def load_config(path: Path, overrides: list[str] = ()) -> AuditConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read config file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None
    return from_data(AuditConfig, apply_overrides(data, list(overrides)))


def demo_config() -> AuditConfig:
    """The built-in demo: the small CNN on scikit-learn's digits, with and without PGD adversarial training."""
    return AuditConfig(defences=(DefenceConfig(name="pgd_at", method="pgd", eps=0.1, steps=7),),
                       candidate="pgd_at")


def replace(cfg: AuditConfig, **changes: Any) -> AuditConfig:
    return dataclasses.replace(cfg, **changes)

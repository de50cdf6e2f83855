"""Config sections for the data, the input domain, the model, the training budget, the output and the reviewer.

Constructors only store parameters; ``validate`` runs once, at load, and names the key and the valid values.
Path-valued keys are relative to the config file in the TOML and absolute once loaded (``audit.config.paths``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from attacks.recipes import OPTIMIZERS, SCHEDULES
from audit.config.names import MAX_CLASSES, display
from audit.core.errors import UsageError


def finite(path: str, **values: float | Sequence[float] | None) -> None:
    """Every value must be a finite number (NaN and Inf in a TOML file are numbers too)."""
    for k, v in values.items():
        if v is None:
            continue
        items = v if isinstance(v, (tuple, list)) else (v,)
        if any(not math.isfinite(float(x)) for x in items):
            raise UsageError(f"{path}.{k}: {list(items) if isinstance(v, (tuple, list)) else v} is not a finite "
                             f"number")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from.

    source: a built-in ("digits", "breast-cancer") or a format: "npz" (``path`` to an archive with x_train, y_train,
    x_test, y_test), "npy" (``path`` to a directory of memory-mapped x_/y_ train/test .npy files, read lazily),
    "folder" (``path`` to class sub-folders of PNG/JPEG, under train/ and test/ or split by test_fraction),
    "table" (``path`` to a CSV or Parquet file with ``label_column``; ``test_path`` or test_fraction),
    "factory" (``factory`` = "package.module:function" with ``kwargs``). Which sources exist is the data room's
    registry (``audit.data.sources.SOURCES``), checked when the config loads. max_test: audit a subsample of
    this many test points (stratified by class, drawn with the run's seed, in the split's order;
    ``audit.data.subsample``), e.g. for a screening run; None: the whole test split.
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
    max_memory_gb: float = 0.0           # what an in-memory source may declare (0: 80% of the available memory)
    max_test: int | None = None          # audit a stratified, seeded subsample of this many test points

    def validate(self, path: str) -> None:
        finite(path, test_fraction=self.test_fraction, max_memory_gb=self.max_memory_gb)
        declared = max(len(self.class_names), self.num_classes)
        if self.max_test is not None and self.max_test < max(declared, 2):
            what = f"every one of the {declared} declared classes" if declared else "two classes"
            raise UsageError(f"{path}.max_test: {self.max_test} test points cannot hold {what}; give at least "
                             f"{max(declared, 2)} and at least the number of classes (or leave it out to audit the "
                             f"whole test split)")
        if self.max_memory_gb < 0:
            raise UsageError(f"{path}.max_memory_gb: give a size in GB >= 0 (0: 80% of the available memory)")
        if len(self.class_names) > MAX_CLASSES or self.num_classes > MAX_CLASSES:
            raise UsageError(f"{path}: at most {MAX_CLASSES:,} classes")
        for i, name in enumerate(self.class_names):
            display(f"{path}.class_names[{i}]", name)
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
        if self.num_classes < 0 or self.num_classes == 1 or (self.num_classes and self.class_names and
                                                             len(self.class_names) != self.num_classes):
            raise UsageError(f"{path}: num_classes must be 0 (inferred) or >= 2 and agree with the number of "
                             f"class_names")


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
        finite(path, clip=self.clip, mean=self.mean, std=self.std)
        if len(self.clip) != 2 or not self.clip[0] < self.clip[1]:
            raise UsageError(f"{path}.clip: give [low, high] with low < high")
        if len(self.mean) != len(self.std):
            raise UsageError(f"{path}: mean and std need one value per channel each")
        if any(s <= 0 for s in self.std):
            raise UsageError(f"{path}.std: every std must be > 0")
        if self.feature_units not in ("standardised", "raw"):
            raise UsageError(f"{path}.feature_units: {self.feature_units!r} is not valid; valid: 'standardised', "
                             f"'raw'")


MODEL_TRAINING = ("natural", "adversarial", "unknown")   # model.training: how a supplied model was trained


@dataclass(frozen=True)
class ModelConfig:
    """The audited model.

    factory: "package.module:function" returning an nn.Module that outputs logits (``kwargs`` passed to it); with
    ``weights`` (.safetensors, or a .pt/.pth state dict read with weights_only) the model is audited as trained,
    without them advaudit trains it. archive: a TorchScript file or a torch.export ``.pt2`` program instead.
    trust_pickle: allow full unpickling of ``weights`` and ``.pt2`` archives (runs code from the file: only for
    files you trust). training: how the supplied model was trained, "natural" (no defence: validity check C11 then
    checks that the attacks break it), "adversarial" or "unknown" (the default); a model advaudit trains is
    natural.
    """

    factory: str = "audit.models:build_small_cnn"
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str = ""
    archive: str = ""
    trust_pickle: bool = False
    training: str = "unknown"

    def validate(self, path: str) -> None:
        if self.weights and self.archive:
            raise UsageError(f"{path}: give either weights (with a factory) or archive, not both")
        if self.training not in MODEL_TRAINING:
            raise UsageError(f"{path}.training: {self.training!r} is not valid; valid: "
                             f"{', '.join(map(repr, MODEL_TRAINING))} (how the supplied model was trained)")
        if not self.archive and ":" not in self.factory:
            raise UsageError(f"{path}.factory: {self.factory!r} must have the form 'package.module:function'")


@dataclass(frozen=True)
class TrainingConfig:
    """Training budget and optimiser shared by the baseline and every defence (attacks/recipes.py).

    optimizer: "adam" or "sgd" (with ``momentum``); schedule: "constant", "onecycle" or "piecewise" learning rate;
    precision: "bf16" autocasts training on a GPU (fp32 on a CPU); channels_last: trains 4-d models in the
    channels-last memory format (meant for GPUs).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str = "constant"
    precision: str = "fp32"
    channels_last: bool = False

    def validate(self, path: str) -> None:
        finite(path, lr=self.lr, momentum=self.momentum)
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise UsageError(f"{path}: epochs and batch_size must be >= 1 and lr > 0")
        for key, value, valid in (("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES),
                                  ("precision", self.precision, ("fp32", "bf16"))):
            if value not in valid:
                raise UsageError(f"{path}.{key}: {value!r} is not valid; valid: {', '.join(map(repr, valid))}")
        if not 0 <= self.momentum < 1:
            raise UsageError(f"{path}.momentum: give a value in [0, 1)")


@dataclass(frozen=True)
class ReviewerConfig:
    """Who reviews the report; left empty, the report shows blank lines for a signature."""

    name: str = ""
    role: str = ""
    date: str = ""


PAPERS = ("a4", "letter")


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes. formats: any of "html", "json", "md", "csv" (triage.csv), "pdf" (needs Chromium); the
    valid names are the renderers' registry (``reports.FORMATS``), checked when the config loads.
    include_weights: copy every audited variant's weights into the bundle (models/*.safetensors). sign_key: an
    Ed25519 private key (PEM) to sign the bundle with (in-toto Statement in a DSSE envelope). bundle_source: copy
    the model factory's source file into the bundle (source/<file>.py). paper: the PDF's paper size, "a4" or
    "letter"."""

    formats: tuple[str, ...] = ("html", "json", "md", "csv")
    include_weights: bool = True
    sign_key: str = ""
    bundle_source: bool = False
    paper: str = "a4"

    def validate(self, path: str) -> None:
        for f in ("json", "html"):
            if f not in self.formats:
                raise UsageError(f"{path}.formats: {f!r} is always written (the evidence bundle needs it)")
        if self.paper not in PAPERS:
            raise UsageError(f"{path}.paper: {self.paper!r} is not a paper size; valid: {', '.join(PAPERS)}")

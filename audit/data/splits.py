"""Data splits: the one in-memory or lazily read representation every check sees, and shared loader helpers.

Inputs are float32 ``torch.Tensor`` or lazily read ``audit.rows.Rows`` (memory-mapped ``.npy``, image folders);
labels are always an int64 tensor. The sources that build splits live in ``audit/sources/`` (one per format).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from audit.core.errors import UsageError
from audit.data.rows import Rows, digest


@dataclass(frozen=True)
class Splits:
    """Train and test splits, with the input domain the eps values are expressed in.

    x_*: float32 (N, ...) tensors or ``Rows``, inside ``clip``; y_*: int64 (N,) in [0, num_classes).
    kind: "image" or "tabular". ``bounds``: per-feature (low, high) tensors shaped like one input when the valid
    range differs per feature (tabular data in standardised units); None means ``clip`` applies to every value.
    ``preprocessing`` records what the loader did to the raw data (JSON-able), for the report. ``n_test_full``:
    the test split's size before ``[data] max_test`` replaced it by a subsample (``audit.data.subsample``).
    """

    name: str
    kind: str
    x_train: torch.Tensor | Rows
    y_train: torch.Tensor
    x_test: torch.Tensor | Rows
    y_test: torch.Tensor
    num_classes: int
    clip: tuple[float, float]
    class_names: tuple[str, ...]
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None
    feature_names: tuple[str, ...] = ()
    preprocessing: dict = field(default_factory=dict)
    x_val: torch.Tensor | Rows | None = None
    y_val: torch.Tensor | None = None
    x_ood: torch.Tensor | None = None   # the user's out-of-distribution inputs (data.ood_path), if any
    n_test_full: int | None = None      # the test split's size before [data] max_test subsampled it; None: whole

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def attack_clip(self):
        """What attacks clip to: per-feature bounds when declared, else the scalar clip range."""
        return self.bounds if self.bounds is not None else self.clip

    @property
    def range_width(self) -> float:
        """Width of the valid range of one input value (median over features for per-feature bounds)."""
        if self.bounds is not None:
            return float((self.bounds[1] - self.bounds[0]).flatten().median())
        return float(self.clip[1] - self.clip[0])

    @property
    def lazy(self) -> bool:
        return isinstance(self.x_train, Rows) or isinstance(self.x_test, Rows)

    def sha256(self) -> dict[str, str]:
        """SHA-256 of each split's float32 inputs then int64 labels, so two runs can prove they used the same data."""
        return {"train": digest(self.x_train, self.y_train), "test": digest(self.x_test, self.y_test)}


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


MAX_LABEL = 2**31 - 1


def as_labels(values, where: str) -> torch.Tensor:
    """Integer class labels as int64; floats are accepted only when they are whole numbers. Every value is checked
    before the cast (a uint64 or a huge float would otherwise wrap to a negative or wrong class)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        else:
            raise UsageError(f"{where}: labels must be one integer per row, got shape {arr.shape} "
                             f"(one-hot labels? pass the class index)")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise UsageError(f"{where}: labels must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and (not np.isfinite(arr).all() or (arr != np.round(arr)).any()):
        bad = int(np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))[0])
        raise UsageError(f"{where}: labels must be integers; row {bad} is {arr[bad].item()!r}")
    if arr.size and arr.min() < 0:
        raise UsageError(f"{where}: labels must be >= 0; row {int(np.argmin(arr))} is {arr.min().item()!r}")
    if arr.size and arr.max() > MAX_LABEL:
        raise UsageError(f"{where}: label {arr.max().item()!r} (row {int(np.argmax(arr))}) is not a class index "
                         f"(too large)")
    return torch.from_numpy(arr.astype(np.int64))


def as_inputs(values, where: str) -> torch.Tensor:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise UsageError(f"{where}: inputs must be numeric, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise UsageError(f"{where}: inputs must have shape (N, ...) with one row per example, got {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def standardise(x_train: np.ndarray, x_test: np.ndarray, feature_names) -> dict:
    """Tabular features in standardised units (train mean 0, std 1) with per-feature bounds from the train data.

    Attacks then perturb every feature on the same scale, and clip to the observed range of each feature.
    """
    mean = x_train.mean(0)
    std = x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    xs_train = ((x_train - mean) / std).astype(np.float32)
    xs_test = ((x_test - mean) / std).astype(np.float32)
    both = np.concatenate([xs_train, xs_test])  # every data point must lie inside its own bounds
    lo, hi = both.min(0), both.max(0)
    return dict(x_train=torch.from_numpy(xs_train), x_test=torch.from_numpy(xs_test),
                bounds=(torch.from_numpy(lo), torch.from_numpy(hi)), clip=(float(lo.min()), float(hi.max())),
                feature_names=tuple(feature_names),
                preprocessing={"standardised": "per feature with the train split's mean and std",
                               "bounds": "per feature: [min, max] over train and test in standardised units",
                               "mean": [float(v) for v in mean], "std": [float(v) for v in std]})

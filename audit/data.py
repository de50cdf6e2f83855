"""Data splits and the built-in data sets (shipped by scikit-learn, no downloads)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from audit.errors import UsageError


@dataclass(frozen=True)
class Splits:
    """Train and test splits as tensors, with the input domain the eps values are expressed in.

    x_*: float32 (N, ...) inside ``clip``; y_*: int64 (N,) in [0, num_classes).
    kind: "image" or "tabular".
    """

    name: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    clip: tuple[float, float]
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sha256(self) -> dict[str, str]:
        """SHA-256 of each split's raw bytes (inputs then labels) so two runs can prove they used the same data."""
        def digest(x: torch.Tensor, y: torch.Tensor) -> str:
            h = hashlib.sha256()
            h.update(x.contiguous().numpy().tobytes())
            h.update(y.contiguous().numpy().tobytes())
            return h.hexdigest()
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


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Splits:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1], shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    return Splits(name="digits", kind="image", x_train=torch.from_numpy(x[tr]), y_train=torch.from_numpy(y[tr]),
                  x_test=torch.from_numpy(x[te]), y_test=torch.from_numpy(y[te]), num_classes=10,
                  clip=(0.0, 1.0), class_names=tuple(str(i) for i in range(10)))


BUILTIN_DATASETS = {"digits": load_digits}


def load_builtin(name: str, test_fraction: float, seed: int) -> Splits:
    try:
        loader = BUILTIN_DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown built-in data set {name!r}; valid: {', '.join(BUILTIN_DATASETS)}") from None
    return loader(test_fraction=test_fraction, seed=seed)

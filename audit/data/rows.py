"""Input rows read lazily, in batches, so a data set larger than RAM can be audited.

A split's inputs are either an in-memory ``torch.Tensor`` or a ``Rows`` object. Both answer ``x.shape``,
``len(x)`` and ``x[slice]`` / ``x[index array]`` with a float32 tensor, so the attack and evaluation loops, which
only ever take batches, work on either. ``Rows`` never holds more than the batch it was asked for.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import torch


class Rows:
    """Base class: subclasses implement ``shape`` and ``read(indices) -> float32 ndarray``."""

    shape: tuple[int, ...]

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, indices: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            indices = np.arange(*key.indices(len(self)))
        elif isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        else:
            indices = key.cpu().numpy() if isinstance(key, torch.Tensor) else np.asarray(key)
            if indices.dtype == bool:
                indices = np.flatnonzero(indices)
        return torch.from_numpy(np.ascontiguousarray(self.read(indices.astype(np.int64)), dtype=np.float32))


class SubsetRows(Rows):
    """The rows ``indices`` of ``base``, still lazy."""

    def __init__(self, base: Rows, indices: np.ndarray):
        self.base, self.indices = base, np.asarray(indices, dtype=np.int64)
        self.shape = (len(self.indices), *base.shape[1:])

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.base.read(self.indices[indices])


def take(x, indices: np.ndarray):
    """Rows ``indices`` of x: a tensor for an in-memory split, a lazy subset otherwise."""
    if isinstance(x, Rows):
        return SubsetRows(x, indices)
    return x[torch.as_tensor(indices, dtype=torch.long)]


def batches(x, batch_size: int = 4096) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, batch) pairs over the rows of a tensor or Rows."""
    for i in range(0, x.shape[0], batch_size):
        yield i, x[i:i + batch_size]


def digest(x, y: torch.Tensor, batch_size: int = 1024) -> str:
    """SHA-256 of a split's float32 input bytes then its int64 labels, streamed."""
    h = hashlib.sha256()
    for _, xb in batches(x, batch_size):
        h.update(xb.to(torch.float32).contiguous().numpy().data.cast("B"))
    h.update(y.to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def scan(x, batch_size: int = 1024) -> tuple[int, int, float, float]:
    """One streamed pass: (rows with a NaN or Inf, first such row or -1, min and max of the finite values)."""
    count, first, lo, hi = 0, -1, float("inf"), float("-inf")
    for i, xb in batches(x, batch_size):
        flat = xb.flatten(1)
        finite = torch.isfinite(flat)
        bad = ~finite.all(1)
        if bad.any():
            if first < 0:
                first = i + int(bad.nonzero()[0, 0])
            count += int(bad.sum())
        if not bad.any():
            lo, hi = min(lo, float(flat.min())), max(hi, float(flat.max()))
        elif finite.any():
            vals = flat[finite]
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
    return count, first, lo, hi

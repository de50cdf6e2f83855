"""Split-aware train/test leakage: exact duplicates by hash and near-duplicates by nearest-neighbour distance.

The near-duplicate threshold is **absolute and calibrated on the data**: the ``quantile`` (default 0.1%) of the
distances from sampled training rows to their nearest *other* training row (exact duplicates excluded). A test row
closer than that to a training row is nearer than almost any two distinct training rows ever are. cleanlab's
Datalab instead uses a relative threshold (0.13 x the median nearest-neighbour distance), which misses leaked copies
with small jitter (REFERENCE section 6).

Distances are Euclidean on flattened rows, computed blockwise with one matrix product per block
(||a||^2 + ||b||^2 - 2ab), so memory stays at ``block x n_ref`` floats whatever the sizes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch


def row_hashes(x) -> list[str]:
    """SHA-1 of each row's float32 bytes (exact duplicates share it)."""
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    return [hashlib.sha1(r.tobytes()).hexdigest() for r in a]


BLOCK_FLOATS = 32 * 2**20  # one block of squared distances: 128 MB of float32


def _block(block: int | None, n_ref: int) -> int:
    return block or max(16, BLOCK_FLOATS // max(n_ref, 1))


def _sq_dist(qb: torch.Tensor, r: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Squared distances of a query block to every reference row, in place (one block-sized buffer)."""
    d2 = qb @ r.T
    return d2.mul_(-2.0).add_(r2[None, :]).add_((qb * qb).sum(1, keepdim=True))


def nearest(query: torch.Tensor, ref: torch.Tensor, *, block: int | None = None, exclude_self: bool = False,
            device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest row of ``ref`` for every row of ``query`` (both (N, d) float).

    ``exclude_self``: query is ref (or its prefix rows); a row is not its own neighbour.
    """
    q = query.reshape(len(query), -1).float().to(device)
    r = ref.reshape(len(ref), -1).float().to(device)
    r2 = (r * r).sum(1)
    dist = np.empty(len(q), dtype=np.float32)
    idx = np.empty(len(q), dtype=np.int64)
    block = _block(block, len(r))
    for i in range(0, len(q), block):
        qb = q[i:i + block]
        d2 = _sq_dist(qb, r, r2)
        if exclude_self:
            rows = torch.arange(i, i + len(qb), device=q.device)
            d2[torch.arange(len(qb), device=q.device), rows] = float("inf")
        m, j = d2.min(1)
        dist[i:i + len(qb)] = m.clamp_min(0).sqrt().cpu().numpy()
        idx[i:i + len(qb)] = j.cpu().numpy()
    return dist, idx


def calibrated_threshold(train: torch.Tensor, *, quantile: float = 0.001, sample: int = 2000, seed: int = 0,
                         block: int | None = None) -> float:
    """The ``quantile`` of nearest-other-training-row distances over a seeded sample of training rows."""
    n = len(train)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, min(sample, n), replace=False))
    flat = train.reshape(n, -1).float()
    q = flat[torch.from_numpy(pick)]
    # nearest over all training rows except the row itself
    r2 = (flat * flat).sum(1)
    out = []
    block = _block(block, n)
    for i in range(0, len(q), block):
        qb = q[i:i + block]
        d2 = _sq_dist(qb, flat, r2)
        d2[torch.arange(len(qb)), torch.from_numpy(pick[i:i + block])] = float("inf")
        out.append(d2.min(1).values.clamp_min(0).sqrt())
    d = torch.cat(out).numpy()
    # exact duplicates inside train (distance 0 up to float error of the matrix-product form) do not set the scale
    d = d[d > 1e-2 * max(float(np.median(d)), 1e-12)]
    return float(np.quantile(d, quantile)) if d.size else 0.0


@dataclass(frozen=True)
class Leaks:
    """Per test row: nearest training row, its distance, and whether it is an exact or near duplicate."""

    distance: np.ndarray
    neighbour: np.ndarray
    exact: np.ndarray          # bool: byte-identical to a training row
    near: np.ndarray           # bool: closer than the threshold (exact included)
    conflicting: np.ndarray    # bool: a duplicate (exact or near) whose label differs from the training row's
    threshold: float

    @property
    def flagged(self) -> np.ndarray:
        return self.exact | self.near


def find_leaks(x_train, y_train, x_test, y_test, *, threshold: float, block: int | None = None) -> Leaks:
    xtr = torch.as_tensor(np.asarray(x_train, dtype=np.float32)) if not isinstance(x_train, torch.Tensor) else x_train
    xte = torch.as_tensor(np.asarray(x_test, dtype=np.float32)) if not isinstance(x_test, torch.Tensor) else x_test
    train_hash = {h: i for i, h in enumerate(row_hashes(xtr))}
    test_hash = row_hashes(xte)
    exact_idx = np.array([train_hash.get(h, -1) for h in test_hash])
    dist, nb = nearest(xte, xtr, block=block)
    exact = exact_idx >= 0
    nb = np.where(exact, exact_idx, nb)
    dist = np.where(exact, 0.0, dist).astype(np.float32)
    near = exact | (dist <= threshold)
    ytr, yte = np.asarray(y_train), np.asarray(y_test)
    conflicting = near & (ytr[nb] != yte)
    return Leaks(dist, nb, exact, near, conflicting, threshold)


def jittered_copies(x_train: torch.Tensor, count: int, sigma: float, clip,
                    seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``count`` training rows copied with Gaussian jitter ``sigma`` (0: exact copies), clipped to the range."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randperm(len(x_train), generator=g)[:count]
    x = x_train[src].clone()
    if sigma > 0:
        x = x + sigma * torch.randn(x.shape, generator=g)
        lo, hi = clip
        x = torch.maximum(torch.minimum(x, hi), lo) if isinstance(lo, torch.Tensor) else x.clamp(lo, hi)
    return x, src.numpy()

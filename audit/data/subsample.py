"""``[data] max_test``: audit a stratified, seeded subsample of the test split (a screening run).

The subsample keeps each class's share of the test split (largest-remainder rounding of the proportional quotas,
every class present in the split keeping at least one point), draws its points with the run's seed plus
``TEST_SUBSAMPLE_OFFSET`` (the ``test_subsample`` stream of ``audit.methods.seeding``) and keeps them in the
split's original order. A lazily read split stays lazy: only the chosen rows are indexed, nothing is read. It is
applied where the data is loaded, before the pre-flight checks and any training see the test split, and applying
it again is a no-op (the split is already no larger than ``max_test``).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from audit.core.errors import UsageError
from audit.data.rows import take
from audit.data.splits import Splits

TEST_SUBSAMPLE_OFFSET = 404  # the seed stream's offset: part of the results (changing it changes the subsample)


def class_quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """Rows to take from each class of ``counts`` (all > 0) so that they sum to ``n`` <= counts.sum():
    proportional, rounded by largest remainder, and at least 1 per class when ``n`` allows it."""
    quota = n * counts / counts.sum()
    take_n = np.floor(quota).astype(np.int64)
    if n >= len(counts):
        take_n = np.maximum(take_n, 1)
    take_n = np.minimum(take_n, counts)
    excess = quota - take_n          # > 0: under its share, < 0: over it
    while take_n.sum() < n:          # the most under-served class with rows left gets the next point
        c = int(np.argmax(np.where(take_n < counts, excess, -np.inf)))
        take_n[c] += 1
        excess[c] -= 1
    floor = 1 if n >= len(counts) else 0
    while take_n.sum() > n:          # the most over-served class that can give one back
        c = int(np.argmin(np.where(take_n > floor, excess, np.inf)))
        take_n[c] -= 1
        excess[c] += 1
    return take_n


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` rows of the labels ``y``, stratified by class (``class_quotas``), drawn by the
    generator ``seed``."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, class_quotas(counts, n),
                                                                          strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def subsample_test(splits: Splits, max_test: int | None, run_seed: int) -> Splits:
    """``splits`` with its test split replaced by a stratified subsample of ``max_test`` points (the run's seed,
    stream ``test_subsample``); unchanged when ``max_test`` is None or the split is no larger. ``n_test_full``
    records the split's size before, and ``preprocessing`` says what was done."""
    if max_test is None or splits.x_test.shape[0] != splits.y_test.shape[0]:  # the latter: check_shapes says so
        return splits
    if max_test < splits.num_classes:
        raise UsageError(f"data.max_test: {max_test} test points cannot hold every one of the {splits.num_classes} "
                         f"classes; give at least {splits.num_classes} (or leave it out to audit the whole test "
                         f"split)")
    n_full = int(splits.y_test.shape[0])
    if n_full <= max_test:
        return splits
    seed = int(run_seed) + TEST_SUBSAMPLE_OFFSET
    idx = stratified_subsample(splits.y_test.cpu().numpy(), max_test, seed)
    note = (f"{max_test:,} of {n_full:,} test points: a stratified subsample (each class's share kept), drawn with "
            f"the run's seed ([data] max_test)")
    return dataclasses.replace(splits, x_test=take(splits.x_test, idx),
                               y_test=splits.y_test[torch.from_numpy(idx)].clone(), n_test_full=n_full,
                               preprocessing={**splits.preprocessing, "test_subsample": note})

"""Interval estimates, paired tests and calibration error (numpy and scipy only)."""
from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs: the binomial test of min(b, c) successes in
    b + c trials at p = 1/2 (scipy's exact binomtest, stable at any n; REFERENCE section 12)."""
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    from scipy.stats import binomtest
    return float(min(1.0, binomtest(min(int(b), int(c)), n, 0.5).pvalue))


def equal_width_bins(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin index of each confidence in ``bins`` equal-width bins of [0, 1]."""
    return np.minimum((np.asarray(confidence, dtype=float) * bins).astype(int), bins - 1)


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017): sum_b |B|/n * |acc(B) - conf(B)|."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return 0.0
    idx = equal_width_bins(confidence, bins)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total / confidence.size)

"""The measured quantities every room shares: a proportion with its interval, one point of the attack grid, the
per-example correctness bits, and the one way eps values are matched and named."""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

from audit.core.stats import wilson_interval

WORST_CASE = "worst_case"
EPS_RTOL = 1e-9


def same_eps(a: float | None, b: float | None) -> bool:
    """Whether two eps values are the same grid point (relative tolerance 1e-9: 8/255 typed two ways matches)."""
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=EPS_RTOL, abs_tol=1e-12)


def metric_key(metric: str, eps: float | None) -> str:
    """Key of a metric in a measurement: ``name`` or ``name@eps`` for metrics measured at one eps."""
    return metric if eps is None else f"{metric}@{eps:.6g}"


@dataclass(frozen=True)
class Accuracy:
    """A proportion with its 95% Wilson interval: ``correct`` of ``n`` points."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    correct: int

    @classmethod
    def of(cls, mask: np.ndarray) -> Accuracy:
        n, k = int(mask.size), int(mask.sum())
        lo, hi = wilson_interval(k, n)
        return cls(value=k / n if n else 0.0, ci_low=lo, ci_high=hi, n=n, correct=k)


@dataclass(frozen=True)
class RobustnessPoint:
    """Robust accuracy of one attack at one eps. ``attack`` is "worst_case" for the per-example worst case."""

    attack: str
    norm: str
    eps: float
    robust_accuracy: float
    ci_low: float
    ci_high: float
    n: int
    example_passes: int
    correct_bits: str = ""  # base64 of numpy.packbits(per-test-point robust correctness), test order
    forward_passes: int = 0  # forward-only passes (score-based attacks, the final check of each iterate)

    @classmethod
    def of(cls, attack: str, norm: str, eps: float, mask: np.ndarray, passes: int,
           forward_passes: int = 0) -> RobustnessPoint:
        acc = Accuracy.of(mask)
        return cls(attack=attack, norm=norm, eps=float(eps), robust_accuracy=acc.value, ci_low=acc.ci_low,
                   ci_high=acc.ci_high, n=acc.n, example_passes=int(passes), correct_bits=pack_bits(mask),
                   forward_passes=int(forward_passes))


def pack_bits(mask: np.ndarray) -> str:
    """Per-example correctness, compactly: base64 of numpy.packbits (decode with ``unpack_bits``)."""
    return base64.b64encode(np.packbits(np.asarray(mask).astype(np.uint8)).tobytes()).decode("ascii")


def unpack_bits(bits: str, n: int) -> np.ndarray:
    """The ``n`` booleans packed by ``pack_bits``; ValueError when ``bits`` is not valid base64 of enough bytes."""
    raw = base64.b64decode(bits, validate=True)
    if len(raw) * 8 < n:
        raise ValueError(f"{len(raw) * 8} bits for {n} points")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n].astype(bool)

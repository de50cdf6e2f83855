"""The threat model's eps against the data's own scale, on both splits.

The same eps is a small or a large perturbation depending on how the data is spread: 0.03 is a faint change of a
[0, 1] image but a whole standard deviation of a feature that varies by 0.03, and nothing at all on data stored in
[0, 255]. This check measures the gated eps (and the grid's largest) relative to the observed value range and the
typical per-feature spread (Linf: the median standard deviation of the non-constant features; L2: the root of the
summed feature variances, a point's typical distance from the mean) of the training and the test split, and how
far the two splits' spreads differ (a test split scaled differently from the training split gives the eps a
different meaning on the points that are attacked). The policy judges ``eps_to_spread``; the rest is shown beside it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, RunCheck, controls, register
from audit.core.result import Details, Measurement
from audit.data.rows import batches, take

MAX_ROWS = 4096        # rows per split the spread is estimated on (evenly spaced: no random draw)
MISMATCH = 2.0         # a test/train spread or range ratio beyond this factor is named in the summary


@dataclass(frozen=True)
class SplitScale:
    """The observed scale of one split (on at most ``MAX_ROWS`` evenly spaced rows)."""

    rows: int
    low: float
    high: float
    spread: float             # Linf: median per-feature std of the non-constant features; L2: sqrt(sum of variances)
    constant_features: int    # features with no variation (left out of the Linf spread)


@dataclass(frozen=True)
class EpsScaleDetails(Details):
    norm: str
    eps: float                # the gated eps (the threat model's, else the grid's middle)
    max_eps: float            # the grid's largest
    valid_range_width: float  # the declared input range's width (input.clip, or the median per-feature bound)
    train: SplitScale
    test: SplitScale
    notes: tuple[str, ...]    # what looks off, in words


def _sample(x) -> torch.Tensor:
    n = int(x.shape[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, MAX_ROWS)).round().astype(np.int64))
    return torch.cat([b.reshape(b.shape[0], -1).double() for _, b in batches(take(x, idx))])


def scale(x, norm: str) -> SplitScale:
    """The value range and typical per-feature spread of the rows of ``x`` (a tensor or lazily read rows)."""
    flat = _sample(x)
    std = flat.std(dim=0, unbiased=False) if flat.shape[0] > 1 else torch.zeros(flat.shape[1], dtype=flat.dtype)
    varying = std[std > 0]
    if norm == "l2":
        spread = float(torch.sqrt((std ** 2).sum()))
    else:
        spread = float(varying.median()) if varying.numel() else 0.0
    return SplitScale(rows=int(flat.shape[0]), low=float(flat.min()), high=float(flat.max()), spread=spread,
                      constant_features=int((std == 0).sum()))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (1.0 if a == 0 else math.inf)


def notes(d: EpsScaleDetails) -> tuple[str, ...]:
    out = []
    spread, width = _ratio(d.test.spread, d.train.spread), _ratio(d.test.high - d.test.low, d.train.high - d.train.low)
    if not 1 / MISMATCH <= spread <= MISMATCH:
        out.append(f"the test split is spread {spread:.2g}x as widely as the training split: the same eps is a "
                   f"different perturbation on the attacked points (are both splits scaled the same way?)")
    if not 1 / MISMATCH <= width <= MISMATCH:
        out.append(f"the test split's value range is {width:.2g}x the training split's")
    if d.train.spread == 0:
        out.append("every training feature is constant: the eps cannot be related to the data's spread")
    return tuple(out)


@register
class EpsScale(RunCheck):
    id = "eps_scale"
    rank = 15
    title = "Eps against the data's scale (training and test splits)"
    controls = controls(MEASURE_2_7="supporting", MAP_2_2="supporting", MEASURE_2_1="supporting")
    description = ("The gated eps relative to the observed value range and typical per-feature spread of the "
                   "training and test splits, and how far the two splits' spreads differ.")
    Details = EpsScaleDetails
    by_default = False   # opt-in (checks.enabled): existing configs keep their findings

    def measure(self, ctx: AuditContext) -> Measurement:
        a, d = ctx.config.attacks, ctx.data
        norm = a.norm.value
        train, test = scale(d.x_train, norm), scale(d.x_test, norm)
        eps, top = float(ctx.gated_eps), float(max(a.eps))
        details = EpsScaleDetails(norm=norm, eps=eps, max_eps=top, valid_range_width=float(d.range_width),
                                  train=train, test=test, notes=())
        details = dataclasses.replace(details, notes=notes(details))
        metrics = {"eps_to_spread": _ratio(eps, train.spread), "eps_to_spread_test": _ratio(eps, test.spread),
                   "max_eps_to_range": _ratio(top, train.high - train.low),
                   "test_train_spread_ratio": _ratio(test.spread, train.spread)}
        metrics = {k: v if math.isfinite(v) else float(np.finfo(np.float64).max) for k, v in metrics.items()}
        summary = (f"{norm} eps {eps:g} is {metrics['eps_to_spread']:.2g}x the training split's typical feature "
                   f"spread ({train.spread:.3g}) and {metrics['eps_to_spread_test']:.2g}x the test split's")
        if details.notes:
            summary += "; " + "; ".join(details.notes)
        return Measurement(check=self.id, metrics=metrics, details=details, summary=summary)

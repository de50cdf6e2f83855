"""Config section of the ART cross-check (``[checks.art_agreement]``): its paired test's level, the shortfall its
subsample is sized to detect, its time budget and Square's subsample."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from audit.core.errors import UsageError


@dataclass(frozen=True)
class ArtAgreementConfig:
    """The ART cross-check's paired test and budget. alpha: the level of the exact one-sided paired test per attack
    (H0: ours is at least as strong as ART's); detect_shortfall: the shortfall (a share of points) the judged
    attacks' subsample is sized to detect at alpha, normally the policy's max for the check; max_share: the share
    of the variant's attack time (the grid's) the cross-check may spend, which sizes its subsamples between
    min_points and attacks.art_crosscheck_points; min_points: the fewest points the judged attacks run on whatever
    the budget (0: the points the paired test needs to detect detect_shortfall, 167 by default; below that need the
    finding says when the budget cut the subsample); square_points: Square's subsample at most (ART's Square runs
    query by query in NumPy; a random search is reported, not judged)."""

    alpha: float = field(default=0.05, metadata={"doc": "level of the paired test (H0: ours at least as strong)"})
    detect_shortfall: float = field(default=0.03, metadata={"doc": "shortfall the judged subsample can detect"})
    max_share: float = field(default=0.15, metadata={"doc": "at most this share of the attack time"})
    min_points: int = field(default=0, metadata={"doc": "fewest points whatever the budget (0: detect_shortfall's)",
                                                 "bound": 100_000})
    square_points: int = field(default=64, metadata={"doc": "Square's subsample at most (reported, not judged)",
                                                     "bound": 100_000})

    def validate(self, path: str) -> None:
        if not (0 < self.alpha < 0.5 and 0 < self.detect_shortfall < 1):
            raise UsageError(f"{path}: alpha must be in (0, 0.5) and detect_shortfall in (0, 1)")
        if not (isinstance(self.max_share, (int, float)) and math.isfinite(self.max_share)
                and 0 < self.max_share <= 1):
            raise UsageError(f"{path}.max_share: give a share of the attack time in (0, 1]")
        if self.min_points < 0:
            raise UsageError(f"{path}.min_points: must be >= 0 (0: the points detect_shortfall needs)")
        if self.square_points < 1:
            raise UsageError(f"{path}.square_points: must be >= 1")

"""Config section of the ART cross-check (``[checks.art_agreement]``): its paired test's level, the shortfall its
APGD-CE subsample is sized to detect and Square's subsample."""
from __future__ import annotations

from dataclasses import dataclass, field

from audit.core.errors import UsageError


@dataclass(frozen=True)
class ArtAgreementConfig:
    """The ART cross-check's paired test. alpha: the level of the exact one-sided paired test per attack (H0: ours
    is at least as strong as ART's); detect_shortfall: the shortfall (a share of points) the APGD-CE subsample is
    sized to detect at alpha, normally the policy's max for the check; square_points: Square's subsample (ART's
    Square runs query by query in NumPy; a random search is reported, not judged)."""

    alpha: float = field(default=0.05, metadata={"doc": "level of the paired test (H0: ours at least as strong)"})
    detect_shortfall: float = field(default=0.03, metadata={"doc": "shortfall the APGD-CE subsample can detect"})
    square_points: int = field(default=64, metadata={"doc": "Square's subsample (reported, not judged)",
                                                     "bound": 100_000})

    def validate(self, path: str) -> None:
        if not (0 < self.alpha < 0.5 and 0 < self.detect_shortfall < 1):
            raise UsageError(f"{path}: alpha must be in (0, 0.5) and detect_shortfall in (0, 1)")
        if self.square_points < 1:
            raise UsageError(f"{path}.square_points: must be >= 1")

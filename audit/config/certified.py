"""Config section of the certified lower bound (``[checks.certified]``): the bound propagation method, how many
test points it certifies and in batches of how many."""
from __future__ import annotations

from dataclasses import dataclass, field

from audit.core.errors import UsageError

CERTIFY_METHODS = ("crown", "ibp")


@dataclass(frozen=True)
class CertifiedConfig:
    """The certified check's settings. method: "crown" (backward linear relaxation, each layer's pre-activation
    bounds by CROWN where the cost fits, else by IBP: never looser than IBP) or "ibp" (interval bound propagation
    only: one pass, looser); points: certify a seeded subsample of this many test points (0: every test point);
    batch_size: points bounded at once (CROWN's memory grows with it)."""

    method: str = field(default="crown", metadata={"doc": '"crown" (tighter) or "ibp" (one pass, looser)'})
    points: int = field(default=0, metadata={"doc": "a seeded subsample of this many test points (0: all)",
                                             "bound": 10_000_000})
    batch_size: int = field(default=64, metadata={"doc": "points bounded at once", "bound": 100_000})

    def validate(self, path: str) -> None:
        if self.method not in CERTIFY_METHODS:
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: "
                             f"{', '.join(map(repr, CERTIFY_METHODS))}")
        if self.points < 0:
            raise UsageError(f"{path}.points: must be >= 0 (0: every test point)")
        if self.batch_size < 1:
            raise UsageError(f"{path}.batch_size: must be >= 1")

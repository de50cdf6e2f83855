"""The threat model, declared once (``[threat_model]``): the norm and budget an attacker has, in input units.

When declared it drives, unless a key overrides it: the attack grid (a spread around eps that includes eps), every
defence's training eps, the policy's thresholds stated relative to it (``eps_factor``), the report's headline and
the residual-risk statement. Without it advaudit keeps its generic defaults and the report says that no threat
model was declared. Common choices: 28x28 grey digits Linf 0.3 (Madry et al. 2018); natural 8-bit images Linf 8/255
or L2 0.5 (RobustBench CIFAR-10); ImageNet Linf 4/255.
"""
from __future__ import annotations

from dataclasses import dataclass

from attacks.base import Norm
from audit.config.names import display
from audit.config.sections import finite
from audit.core.errors import UsageError

SPREAD = (0.25, 0.5, 0.75, 1.0, 1.25)   # the default attack grid, as multiples of the threat eps
LEGACY_GRID = (0.025, 0.05, 0.1, 0.15, 0.2)  # the grid when no threat model is declared
LEGACY_DEFENCE_EPS = 0.1
KNOWLEDGE = ("white-box", "black-box")


@dataclass(frozen=True)
class ThreatModelConfig:
    """norm: "linf" or "l2"; eps: the attacker's budget in input units (0.0313725 for 8/255 on [0, 1] images);
    name: a label for reports ("cifar-linf-8/255"); knowledge: what the attacker knows ("white-box": architecture,
    weights and gradients; "black-box": only queries; the audit's white-box attacks then over-approximate it)."""

    eps: float | None = None
    norm: Norm = Norm.LINF
    name: str = ""
    knowledge: str = "white-box"

    @property
    def declared(self) -> bool:
        return self.eps is not None

    def validate(self, path: str) -> None:
        finite(path, eps=self.eps)
        display(f"{path}.name", self.name)
        if self.eps is not None and self.eps <= 0:
            raise UsageError(f"{path}.eps: {self.eps} must be > 0 (in input units, e.g. 0.0313725 for 8/255)")
        if self.knowledge not in KNOWLEDGE:
            raise UsageError(f"{path}.knowledge: {self.knowledge!r} is not valid; valid: "
                             f"{', '.join(map(repr, KNOWLEDGE))}")

    def label(self) -> str:
        return self.name or (f"{self.norm.value} eps {self.eps:g}" if self.declared else "not declared")

    def grid(self) -> tuple[float, ...]:
        """The attack grid around the threat eps (it is included exactly); only for a declared threat."""
        eps = self.eps
        if eps is None:
            raise ValueError("threat_model.grid() needs a declared eps")
        return tuple(eps if f == 1.0 else round(f * eps, 10) for f in SPREAD)

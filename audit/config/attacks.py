"""Config sections of the evasion attack grid (``[attacks]``)."""
from __future__ import annotations

from dataclasses import dataclass

from attacks import ATTACK_FAMILY, ATTACK_LABELS, ATTACKS
from attacks.base import Norm
from attacks.presets import PRESETS
from audit.config.sections import finite
from audit.core.errors import UsageError


@dataclass(frozen=True)
class AttackConfig:
    """The evasion attack grid: every attack at every eps, in input units (the clip range's units).

    ``preset`` ("quick", "standard", "thorough"; attacks/presets.py) fills every setting left unset; the resolved
    values are what the run records. ``early_stop`` stops attacking a point once it is misclassified (identical
    robust accuracy, fewer passes). ``precision = "bf16"`` runs the attacks under bfloat16 autocast and
    ``channels_last`` converts 4-d inputs and the model (both meant for GPUs; results are cross-checked in fp32).
    ``probe_points``: subsample for the validity probes (convergence, unbounded attack, gradient health,
    determinism); ``square_points`` and ``square_queries``: ART's Square attack as the black-box cross-check.
    """

    preset: str = "standard"
    attacks: tuple[str, ...] | None = None
    norm: Norm = Norm.LINF
    eps: tuple[float, ...] = (0.025, 0.05, 0.1, 0.15, 0.2)
    pgd_steps: int | None = None
    pgd_restarts: int | None = None
    apgd_steps: int | None = None
    apgd_restarts: int | None = None
    n_targets: int | None = None
    probe_points: int | None = None
    square_queries: int | None = None
    square_points: int | None = None
    early_stop: bool = True
    precision: str = "fp32"
    channels_last: bool = False
    batch_size: int = 512
    art_crosscheck_points: int = 200

    def __post_init__(self):  # settings left unset take the preset's value (an unknown preset: see validate)
        for key, value in PRESETS.get(self.preset, {}).items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)

    def validate(self, path: str) -> None:
        if self.preset not in PRESETS:
            raise UsageError(f"{path}.preset: {self.preset!r} is not a preset; valid: {', '.join(PRESETS)}")
        finite(path, eps=self.eps)
        for a in self.attacks:
            if a not in ATTACKS:
                raise UsageError(f"{path}.attacks: {a!r} is not a known attack; valid: {', '.join(ATTACKS)}")
        if not self.attacks:
            raise UsageError(f"{path}.attacks: give at least one attack")
        if not self.eps or any(e <= 0 for e in self.eps):
            raise UsageError(f"{path}.eps: give at least one eps, all > 0")
        if list(self.eps) != sorted(set(self.eps)):
            raise UsageError(f"{path}.eps: list the eps values in increasing order without repeats")
        ints = ("pgd_steps", "pgd_restarts", "apgd_steps", "apgd_restarts", "n_targets", "probe_points",
                "square_queries", "square_points", "batch_size")
        bad = [k for k in ints if getattr(self, k) < 1]
        if bad:
            raise UsageError(f"{path}: {', '.join(bad)} must be >= 1")
        if self.precision not in ("fp32", "bf16"):
            raise UsageError(f"{path}.precision: {self.precision!r} is not valid; valid: 'fp32', 'bf16'")

    def params(self, attack: str) -> dict:
        """Keyword settings for one attack of the grid."""
        family = ATTACK_FAMILY[attack]
        out: dict = {"early_stop": self.early_stop}
        if family == "pgd":
            out.update(steps=self.pgd_steps, restarts=self.pgd_restarts)
        elif family == "apgd":
            out.update(steps=self.apgd_steps, restarts=self.apgd_restarts)
        if attack.endswith("_t"):
            out["n_targets"] = self.n_targets
        return out

    def describe(self, attack: str) -> str:
        """'PGD-20 x 1 restart, step 2.5 eps/20' style text for the report."""
        p = self.params(attack)
        label = ATTACK_LABELS[attack]
        if ATTACK_FAMILY[attack] == "single":
            return f"{label} (one step of size eps)"
        text = f"{label}, {p['steps']} steps x {p['restarts']} restart(s)"
        text += ", step 2.5 eps/steps" if ATTACK_FAMILY[attack] == "pgd" else ", step from 2 eps, halved adaptively"
        if "n_targets" in p:
            text += f", {p['n_targets']} target classes"
        return text

"""Config sections of the evasion attack grid (``[attacks]``)."""
from __future__ import annotations

from dataclasses import dataclass

from attacks import ATTACKS
from attacks.base import Norm
from attacks.presets import PRESETS
from attacks.spec import config_keys
from audit.config.sections import finite
from audit.core.errors import UsageError


@dataclass(frozen=True)
class AttackConfig:
    """The evasion attack grid: every attack at every eps, in input units (the clip range's units).

    ``preset`` ("quick", "standard", "thorough"; attacks/presets.py) fills every setting left unset; the resolved
    values are what the run records. ``early_stop`` stops attacking a point once it is misclassified (identical
    robust accuracy, fewer passes). ``precision = "bf16"`` runs the attacks under bfloat16 autocast and
    ``channels_last`` converts 4-d inputs and the model (both meant for GPUs; results are cross-checked in fp32).
    ``chain``: the attacks that run as AutoAttack runs them, each on the points the earlier ones left robust.
    ``probe_points``: subsample for the validity probes (convergence, unbounded attack, gradient health,
    determinism); ``square_points``: probe points the black-box cross-check (C6) attacks when Square is not in the
    grid. ``art_crosscheck_points``: the subsample ART's FGSM and PGD re-attack (APGD-CE on the points needed to detect
    ``[checks.art_agreement] detect_shortfall``, 167 by default; Square on ``[checks.art_agreement] square_points``).
    """

    preset: str = "standard"
    attacks: tuple[str, ...] | None = None
    chain: tuple[str, ...] | None = None
    norm: Norm | None = None                 # None: the threat model's norm (else linf)
    eps: tuple[float, ...] | None = None     # None: a spread around the threat eps (else a generic grid)
    pgd_steps: int | None = None
    pgd_restarts: int | None = None
    apgd_steps: int | None = None
    apgd_restarts: int | None = None
    n_targets: int | None = None
    fab_steps: int | None = None
    fab_restarts: int | None = None
    square_queries: int | None = None
    square_restarts: int | None = None
    square_p_init: float | None = None
    probe_points: int | None = None
    square_points: int | None = None
    early_stop: bool = True
    precision: str = "fp32"
    channels_last: bool = False
    batch_size: int = 512
    art_crosscheck_points: int = 200

    def __post_init__(self):  # settings left unset take the preset's value (an unknown preset: see validate)
        chain_unset = self.chain is None
        for key, value in PRESETS.get(self.preset, {}).items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if chain_unset and self.attacks is not None and self.chain is not None:  # your attacks, the preset's order
            object.__setattr__(self, "chain", tuple(a for a in self.chain if a in self.attacks))

    def validate(self, path: str) -> None:
        if self.preset not in PRESETS:
            raise UsageError(f"{path}.preset: {self.preset!r} is not a preset; valid: {', '.join(PRESETS)}")
        finite(path, eps=self.eps, square_p_init=self.square_p_init)
        attacks, chain = self.attacks or (), self.chain or ()  # both set by every preset (a known one, checked above)
        for a in attacks:
            if a not in ATTACKS:
                raise UsageError(f"{path}.attacks: {a!r} is not a known attack; valid: {', '.join(ATTACKS)}")
        for a in chain:
            if a not in attacks:
                raise UsageError(f"{path}.chain: {a!r} is not among attacks {list(attacks)}")
        if self.square_p_init is not None and not 0 < self.square_p_init <= 1:
            raise UsageError(f"{path}.square_p_init: give a share in (0, 1]")
        if not self.attacks:
            raise UsageError(f"{path}.attacks: give at least one attack")
        if self.eps is not None:  # None: resolved by the whole config from the threat model
            if not self.eps or any(e <= 0 for e in self.eps):
                raise UsageError(f"{path}.eps: give at least one eps, all > 0")
            if list(self.eps) != sorted(set(self.eps)):
                raise UsageError(f"{path}.eps: list the eps values in increasing order without repeats")
        ints = ("pgd_steps", "pgd_restarts", "apgd_steps", "apgd_restarts", "n_targets", "fab_steps",
                "fab_restarts", "square_queries", "square_restarts", "probe_points", "square_points", "batch_size")
        bad = [k for k in ints if getattr(self, k) < 1]
        if bad:
            raise UsageError(f"{path}: {', '.join(bad)} must be >= 1")
        if self.precision not in ("fp32", "bf16"):
            raise UsageError(f"{path}.precision: {self.precision!r} is not valid; valid: 'fp32', 'bf16'")

    def params(self, attack: str) -> dict:
        """Keyword settings for one attack of the grid: the fields of its parameter class this config sets."""
        return {name: getattr(self, key) for name, key in config_keys(ATTACKS[attack].params).items()}

    def describe(self, attack: str) -> str:
        """'PGD, 20 steps x 1 restart(s), step 2.5 eps/steps' style text for the report."""
        spec = ATTACKS[attack]
        text = spec.describe(spec.make(**self.params(attack)))
        chain = self.chain or ()  # set by the preset
        if attack in chain and chain.index(attack) > 0:
            text += f"; on the points {', '.join(ATTACKS[a].label for a in chain[:chain.index(attack)])} " \
                    f"left robust"
        return text

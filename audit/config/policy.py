"""The policy: thresholds declared before the run, loaded from TOML and bound to the verdict by SHA-256.

Words used everywhere (code, JSON, report): a policy **threshold** judges one metric of one check; a **validity
check** (C1-C16) judges whether the attack evaluation itself can be trusted; a **gating finding** is a finding that
decides the verdict (the candidate's and the data's). Its ``[evidence]`` section (``EvidenceRule``) says what a GO
needs besides passing thresholds: the checks run, the attack strength, the test points; short of it, INCOMPLETE.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import tomllib

from attacks.presets import PRESETS
from audit.config.sections import finite
from audit.core.errors import UsageError
from audit.core.files import MIB, read_bounded
from audit.core.metrics import metric_key
from audit.core.serde import from_data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Threshold:
    """One threshold on one metric. Higher is better with min/warn_min; lower is better with max/warn_max.
    ``eps`` picks the metric at one eps of the grid; ``eps_factor`` states it relative to the declared threat
    model (1.0: at the threat eps), and wins over ``eps`` when a threat model is declared."""

    metric: str
    eps: float | None = None
    eps_factor: float | None = None
    min: float | None = None
    warn_min: float | None = None
    max: float | None = None
    warn_max: float | None = None

    def validate(self, path: str) -> None:
        finite(path, eps=self.eps, eps_factor=self.eps_factor, min=self.min, warn_min=self.warn_min, max=self.max,
               warn_max=self.warn_max)
        if self.eps_factor is not None and self.eps_factor <= 0:
            raise UsageError(f"{path}.eps_factor: {self.eps_factor} must be > 0")
        lower = self.min is not None or self.warn_min is not None
        upper = self.max is not None or self.warn_max is not None
        if lower == upper:
            raise UsageError(f"{path}: give either min/warn_min or max/warn_max")

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.eps)

    def describe(self) -> str:
        parts = []
        for label, v in (("fail below", self.min), ("warn below", self.warn_min),
                         ("fail above", self.max), ("warn above", self.warn_max)):
            if v is not None:
                parts.append(f"{label} {v:g}")
        return f"{self.key}: " + ", ".join(parts)


@dataclass(frozen=True)
class ValidityThresholds:
    """What the validity checks (C1-C16) tolerate before they warn or fail.

    tolerance: accuracy slack of the grid comparisons (C1, C2, C12) and, at least, of the probe comparisons
    (C3, C5; two probe points when the probe is small); convergence_warn_factor: a C3 drop up to this many
    tolerances warns, beyond fails; unbounded_pass_margin / unbounded_warn_margin: C4 passes within this much of
    chance accuracy, warns within the second; zero_gradient_warn / zero_gradient_fail: C7 shares of points with an
    all-zero input gradient; reference_max_accuracy: C11 warns when the undefended reference keeps more;
    catastrophic_drop: C14 fails when training-probe PGD accuracy falls this much between epochs;
    black_box_fail_share / black_box_fail_points: C6 fails when Square breaks more than this share (and at least
    this many) of the probe points every white-box attack missed; single_step_gap: C16 fails when FGSM robust
    accuracy exceeds the strongest iterative attack's by more than this at any eps.
    """

    tolerance: float = 0.01
    convergence_warn_factor: float = 3.0
    unbounded_pass_margin: float = 0.05
    unbounded_warn_margin: float = 0.2
    zero_gradient_warn: float = 0.01
    zero_gradient_fail: float = 0.10
    reference_max_accuracy: float = 0.10
    catastrophic_drop: float = 0.2
    black_box_fail_share: float = 0.01
    black_box_fail_points: int = 2
    single_step_gap: float = 0.2

    def validate(self, path: str) -> None:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "black_box_fail_points"}
        finite(path, **values)
        if any(v < 0 for v in values.values()):
            raise UsageError(f"{path}: every validity threshold must be >= 0")


# the kinds of evidence change compare names (audit/engine/compare.py ``evidence_changes``)
EVIDENCE_CHANGES = ("checks", "policy", "attacks", "threat_model", "candidate", "seed")


@dataclass(frozen=True)
class CompareRule:
    """How ``advaudit compare`` judges a head against a base on the same test points.

    A drop is a regression when the paired McNemar test rejects "no change" at ``alpha`` (two-sided) and the
    accuracy fell by more than ``max_drop``; a gating finding that passed in the base and fails in the head is one
    too, unless ``gate_flips_regress`` is false. A change of the evidence itself (``EVIDENCE_CHANGES``: a gating
    check dropped or newly skipped, another policy, other attack settings, threat model, candidate or seed) is a
    regression unless its kind is listed in ``allow_changes``.
    """

    alpha: float = 0.05
    max_drop: float = 0.0
    gate_flips_regress: bool = True
    allow_changes: tuple[str, ...] = ()

    def validate(self, path: str) -> None:
        finite(path, alpha=self.alpha, max_drop=self.max_drop)
        if not 0 < self.alpha < 1 or not 0 <= self.max_drop < 1:
            raise UsageError(f"{path}: alpha must be in (0, 1) and max_drop in [0, 1)")
        unknown = [k for k in self.allow_changes if k not in EVIDENCE_CHANGES]
        if unknown:
            raise UsageError(f"{path}.allow_changes: {unknown[0]!r} is not a kind of change; valid: "
                             f"{', '.join(EVIDENCE_CHANGES)}")


PURPOSES = ("sign-off", "screening")
APPLICABLE = "applicable"  # in required_checks: every check on by default that applies to this data and model
BUILTIN = ("default", "screening")  # the shipped policies (audit/config/policies/<name>.toml), named by --policy


@dataclass(frozen=True)
class EvidenceRule:
    """The evidence a GO needs; a run with less is INCOMPLETE, never GO (``[evidence]``).

    purpose: "sign-off" (the verdict is meant to support a deployment decision) or "screening" (a quick look; every
    report says "screening, not a sign-off"). required_checks: check ids that must be enabled and measured (not
    skipped) for the candidate; "applicable" stands for every check on by default whose ``not_applicable`` is
    empty for this data and model (an id listed by name is required even where it does not apply). min_attacks:
    an attack preset (attacks/presets.py) the run's attacks must match or exceed (every attack of the preset, with
    at least its steps, restarts, queries and target classes); "" for no minimum. min_test_points: the fewest
    audited test points (0: no minimum); the default 500 keeps the 95% interval of an accuracy within about
    +-4.4 points, under half the 10-point band between the default policy's robustness fail and warn thresholds.
    The check ids are checked against the registry before any work (audit/engine/evidence.py).
    """

    purpose: str = "sign-off"
    required_checks: tuple[str, ...] = (APPLICABLE,)
    min_attacks: str = "standard"
    min_test_points: int = 500

    def validate(self, path: str) -> None:
        if self.purpose not in PURPOSES:
            raise UsageError(f"{path}.purpose: {self.purpose!r} is not valid; valid: {', '.join(PURPOSES)}")
        if self.min_attacks and self.min_attacks not in PRESETS:
            raise UsageError(f"{path}.min_attacks: {self.min_attacks!r} is not a preset; valid: "
                             f"{', '.join(PRESETS)}, or \"\" for no minimum")
        if self.min_test_points < 0:
            raise UsageError(f"{path}.min_test_points: {self.min_test_points} must be >= 0 (0: no minimum)")
        if len(set(self.required_checks)) != len(self.required_checks):
            raise UsageError(f"{path}.required_checks: list each check once")

    def describe(self) -> str:
        """'required checks: every applicable check on by default; attacks: at least preset 'standard'; ...'"""
        checks = ", ".join("every applicable check on by default" if c == APPLICABLE else c
                           for c in self.required_checks) or "none beyond those enabled"
        attacks = f"at least preset {self.min_attacks!r}" if self.min_attacks else "no minimum"
        points = f"at least {self.min_test_points}" if self.min_test_points else "no minimum"
        return f"required checks: {checks}; attacks: {attacks}; test points: {points}"


@dataclass(frozen=True)
class Policy:
    name: str
    version: str = "1"
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    validity: ValidityThresholds = field(default_factory=ValidityThresholds)
    compare: CompareRule = field(default_factory=CompareRule)
    evidence: EvidenceRule = field(default_factory=EvidenceRule)
    sha256: str = ""
    source: str = ""
    text: str = ""  # the policy file exactly as read (its SHA-256 is ``sha256``); copied into the evidence bundle

    def for_threat(self, threat) -> Policy:
        """The thresholds with every ``eps_factor`` turned into an eps of the declared threat model (unchanged
        when none is declared: their ``eps`` applies)."""
        if not threat.declared:
            return self
        t = {k: dataclasses.replace(v, eps=v.eps_factor * threat.eps) if v.eps_factor is not None else v
             for k, v in self.thresholds.items()}
        return dataclasses.replace(self, thresholds=t)


DERIVED = ("sha256", "source", "text")


def load_policy(spec: str) -> Policy:
    """``spec`` names a shipped policy (``BUILTIN``: "default", "screening") or is a path to a TOML file. Every
    section is loaded as written; a section left out takes its defaults."""
    if spec in BUILTIN:
        raw = resources.files("audit.config").joinpath(f"policies/{spec}.toml").read_bytes()
        source = f"advaudit built-in {spec} policy"
    else:
        try:
            raw = read_bounded(Path(spec), MIB, "policy")
        except OSError as e:
            raise UsageError(f"policy file cannot be read: {spec} ({e.strerror or e})") from None
        source = str(spec)
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"policy file {source} is not valid TOML: {e}") from None
    except RecursionError:
        raise UsageError(f"policy file {source} is nested too deeply") from None
    for derived in DERIVED:
        if derived in data:
            raise UsageError(f"policy.{derived}: computed by advaudit, not a key of the policy file")
    if "gates" in data:  # the name of [thresholds] before advaudit 0.2
        if "thresholds" in data:
            raise UsageError("policy: give [thresholds.*] only ([gates.*] is its old name)")
        log.warning("policy %s: [gates.*] is now called [thresholds.*]; read as such", source)
        data["thresholds"] = data.pop("gates")
    policy = from_data(Policy, data, "policy")
    return dataclasses.replace(policy, sha256=hashlib.sha256(raw).hexdigest(), source=source, text=text)

"""The policy: thresholds declared before the run, loaded from TOML and bound to the verdict by SHA-256."""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from audit.errors import UsageError
from audit.serde import from_data


def metric_key(metric: str, eps: float | None) -> str:
    """Key of a metric in a measurement: ``name`` or ``name@eps`` for metrics measured at one eps."""
    return metric if eps is None else f"{metric}@{eps:.6g}"


@dataclass(frozen=True)
class Gate:
    """One threshold on one metric. Higher is better with min/warn_min; lower is better with max/warn_max."""

    metric: str
    eps: float | None = None
    min: float | None = None
    warn_min: float | None = None
    max: float | None = None
    warn_max: float | None = None

    def validate(self, path: str) -> None:
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
class CompareRule:
    """How ``advaudit compare`` judges a head against a base on the same test points.

    A drop is a regression when the paired McNemar test rejects "no change" at ``alpha`` (two-sided) and the
    accuracy fell by more than ``max_drop``; a gating finding that passed in the base and fails in the head is one
    too, unless ``gate_flips_regress`` is false.
    """

    alpha: float = 0.05
    max_drop: float = 0.0
    gate_flips_regress: bool = True

    def validate(self, path: str) -> None:
        if not 0 < self.alpha < 1 or not 0 <= self.max_drop < 1:
            raise UsageError(f"{path}: alpha must be in (0, 1) and max_drop in [0, 1)")


@dataclass(frozen=True)
class Policy:
    name: str
    version: str = "1"
    gates: dict[str, Gate] = field(default_factory=dict)
    compare: CompareRule = field(default_factory=CompareRule)
    sha256: str = ""
    source: str = ""
    text: str = ""  # the policy file exactly as read (its SHA-256 is ``sha256``); copied into the evidence bundle


def load_policy(spec: str) -> Policy:
    """``spec`` is "default" (the shipped policy) or a path to a TOML file."""
    if spec == "default":
        raw = resources.files("audit").joinpath("policies/default.toml").read_bytes()
        source = "advaudit built-in default policy"
    else:
        try:
            raw = Path(spec).read_bytes()
        except OSError as e:
            raise UsageError(f"policy file cannot be read: {spec} ({e.strerror or e})") from None
        source = str(spec)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"policy file {source} is not valid TOML: {e}") from None
    for derived in ("sha256", "source", "text"):
        if derived in data:
            raise UsageError(f"policy.{derived}: computed by advaudit, not a key of the policy file")
    policy = from_data(Policy, data, "policy")
    return Policy(name=policy.name, version=policy.version, gates=policy.gates,
                  sha256=hashlib.sha256(raw).hexdigest(), source=source, text=raw.decode("utf-8"))

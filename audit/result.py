"""The one result model: immutable, JSON-round-trippable, and the only thing renderers see."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from audit.evaluation import Accuracy, RobustnessPoint
from audit.serde import from_data, to_data

SCHEMA_VERSION = "1.0"


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"
    INFO = "info"  # measured, no gate declared in the policy


class Verdict(str, enum.Enum):
    """GO: every gating finding passed (warnings allowed). NO_GO: a gate failed. ERROR: a gating check crashed."""

    GO = "go"
    NO_GO = "no-go"
    ERROR = "error"

    @property
    def exit_code(self) -> int:
        return {Verdict.GO: 0, Verdict.NO_GO: 1, Verdict.ERROR: 3}[self]


@dataclass(frozen=True)
class Control:
    """A framework item a finding is evidence for. strength: "direct" or "supporting"."""

    id: str
    strength: str


@dataclass(frozen=True)
class Measurement:
    """What a check measured: numbers (``metrics``) and JSON-able tables (``details``); no verdict."""

    check: str
    variant: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None
    skipped: str | None = None
    at_best: Status | None = None  # the check's own sub-gates warned: the finding is never judged better


@dataclass(frozen=True)
class Finding:
    """A measurement judged against the policy. ``gating`` findings decide the verdict."""

    id: str
    check: str
    title: str
    variant: str | None
    status: Status
    summary: str
    metrics: dict[str, float]
    details: dict[str, Any]
    controls: tuple[Control, ...]
    gating: bool
    gate: str | None = None


@dataclass(frozen=True)
class VariantResult:
    """One trained model. ``correct_bits``: base64 of numpy.packbits of per-test-point clean correctness."""

    name: str
    description: str
    candidate: bool
    clean_accuracy: Accuracy | None
    robustness: tuple[RobustnessPoint, ...]
    correct_bits: str = ""
    train_seconds: float | None = None
    train_epochs: int | None = None
    train_example_passes: int | None = None
    ece: float | None = None   # expected calibration error on the clean test split (15 equal-width bins)
    best: bool = False         # best under the policy: all its gates met, highest gated robust accuracy


@dataclass(frozen=True)
class SubcategoryStatus:
    """One NIST AI RMF subcategory: the evidence this run gives for it, or why it was not measured."""

    id: str
    function: str
    category: str
    text: str
    status: str  # "evidence" | "supporting" | "not measured"
    findings: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class AuditResult:
    schema_version: str
    tool: dict[str, str]
    created: str
    verdict: Verdict
    candidate: str
    dataset: dict[str, Any]
    model: dict[str, Any]
    policy: dict[str, Any]
    config: dict[str, Any]
    environment: dict[str, str]
    variants: tuple[VariantResult, ...]
    findings: tuple[Finding, ...]
    nist: tuple[SubcategoryStatus, ...]
    not_measured: tuple[dict[str, str], ...] = ()
    threat_model: dict[str, str] = field(default_factory=dict)
    residual_risk: tuple[str, ...] = ()
    reviewer: dict[str, str] = field(default_factory=dict)
    frameworks: dict[str, str] = field(default_factory=dict)  # editions the IDs refer to (ATLAS release pinned)
    duration_seconds: float = 0.0

    def to_dict(self) -> dict:
        return to_data(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AuditResult":
        return from_data(cls, data, "results")

    def variant(self, name: str) -> VariantResult:
        return next(v for v in self.variants if v.name == name)

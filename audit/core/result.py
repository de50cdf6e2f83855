"""The one result model: immutable, JSON-round-trippable, and the only thing renderers see.

Every check's measurement carries a frozen ``Details`` dataclass of its own (declared next to the check); the
findings keep it. ``AuditResult.from_dict`` rebuilds those typed details when given the checks' ``Details`` types
(``audit.checks.details_types()``); without them (this room imports no check) details stay plain mappings.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.core.metrics import Accuracy, RobustnessPoint
from audit.core.provenance_parts import ArrayDigest, CIRun, GitState, SuppliedFile
from audit.core.serde import from_data, to_data

SCHEMA_VERSION = "2.4"
SCHEMA_MAJOR = 2


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"
    INFO = "info"  # measured, no threshold declared in the policy


class Verdict(str, enum.Enum):
    """GO: every gating finding passed (warnings allowed) on the evidence the policy asks for. NO_GO: one failed.
    ERROR: a gating check crashed. INCOMPLETE: nothing failed, but the run is short of the policy's ``[evidence]``
    (a required check not run, weaker attacks, too few test points): no GO can be claimed. Precedence: ERROR >
    NO_GO > INCOMPLETE > GO. Exit codes: 0, 1, 3 and 4 (2 is a usage or input error, which has no verdict)."""

    GO = "go"
    NO_GO = "no-go"
    ERROR = "error"
    INCOMPLETE = "incomplete"

    @property
    def exit_code(self) -> int:
        return {Verdict.GO: 0, Verdict.NO_GO: 1, Verdict.ERROR: 3, Verdict.INCOMPLETE: 4}[self]

    @property
    def label(self) -> str:
        """How every format writes it: "GO", "NO-GO", "ERROR", "INCOMPLETE"."""
        return self.value.upper()


@dataclass(frozen=True)
class Details:
    """Base of every check's typed details (a frozen dataclass with documented fields)."""


@dataclass(frozen=True)
class Control:
    """A framework item a finding is evidence for. strength: "direct" or "supporting"."""

    id: str
    strength: str


@dataclass(frozen=True)
class Measurement:
    """What a check measured: numbers (``metrics``) and its typed ``details``; no verdict."""

    check: str
    variant: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    details: Any = None
    summary: str = ""
    error: str | None = None
    skipped: str | None = None
    at_best: Status | None = None  # the check's own sub-thresholds warned: the finding is never judged better


@dataclass(frozen=True)
class Finding:
    """A measurement judged against the policy's threshold. ``gating`` findings decide the verdict."""

    id: str
    check: str
    title: str
    variant: str | None
    status: Status
    summary: str
    metrics: dict[str, float]
    details: Any
    controls: tuple[Control, ...]
    gating: bool
    threshold: str | None = None


@dataclass(frozen=True)
class VariantResult:
    """One audited model. ``correct_bits``: base64 of numpy.packbits of per-test-point clean correctness."""

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
    best: bool = False         # best under the policy: all its thresholds met, highest gated robust accuracy


@dataclass(frozen=True)
class SubcategoryStatus:
    """One NIST AI RMF subcategory: the evidence this run gives for it, or why it was not measured."""

    id: str
    function: str
    category: str
    text: str
    status: str  # "evidence" | "supporting" | "not measured"
    findings: tuple[str, ...] = ()  # the findings ("robustness:baseline") and run facts ("run:policy") it rests on
    reason: str = ""
    basis: tuple[str, ...] = ()  # per rule that holds: what the evidence showed (audit/frameworks/coverage.toml)


@dataclass(frozen=True)
class SplitHashes:
    """SHA-256 of each split's float32 inputs then int64 labels."""

    train: str
    test: str


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str                      # "image" or "tabular"
    n_train: int
    n_test: int
    num_classes: int
    input_shape: tuple[int, ...]
    clip: tuple[float, ...]
    class_names: tuple[str, ...]
    sha256: SplitHashes
    source: str = ""
    lazy: bool = False
    preprocessing: dict[str, Any] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    n_test_full: int | None = None     # the test split's size before [data] max_test subsampled it; None: whole
    max_test: int | None = None        # [data] max_test as configured (None: not set)


@dataclass(frozen=True)
class ModelInfo:
    factory: str
    kwargs: dict[str, Any]
    source: str
    file_sha256: str
    parameters: int
    architecture: str
    model_class: str = ""   # the audited module's class, "module.QualName" (an in-memory model has no factory)


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    version: str
    sha256: str
    source: str
    thresholds: dict[str, str] = field(default_factory=dict)  # check -> "metric@eps: fail below ..."
    purpose: str = "sign-off"  # "sign-off" or "screening" (the policy's [evidence] purpose)
    evidence: str = ""         # what a GO needs ([evidence] described), "" in results written before it existed


@dataclass(frozen=True)
class ThreatModelInfo:
    """The threat model the numbers answer: declared by the config (norm, eps, name, knowledge) or not, and what
    every attack of the audit assumes."""

    declared: bool
    name: str
    norm: str
    eps: float | None
    knowledge: str
    goal: str
    capability: str
    labels: str
    reference: str


@dataclass(frozen=True)
class NotMeasured:
    threat: str
    reference: str
    why: str


@dataclass(frozen=True)
class StageRecord:
    """One stage of the run: wall seconds, the model passes it cost (over every model this run built), the peak
    memory during it, and where it ran. ``parent`` names the enclosing stage (its time is inside the parent's)."""

    name: str
    seconds: float
    example_passes: int = 0        # forward+backward, summed over examples
    forward_passes: int = 0        # forward only, summed over examples
    peak_host_mb: float | None = None
    peak_device_mb: float | None = None
    parent: str = ""
    node: str = ""                 # the machine that ran it (executors that spread work)


@dataclass(frozen=True)
class RunRecord:
    """Where the time went. ``wall_seconds`` runs from the command's start to the end of rendering;
    ``accounted`` is the share of it the top-level stages cover."""

    stages: tuple[StageRecord, ...]
    wall_seconds: float
    accounted: float
    device: str
    executor: str
    threads: int                   # the most torch threads the run's work ran on
    peak_host_mb: float | None = None
    peak_device_mb: float | None = None
    threads_used: tuple[int, ...] = ()   # every count it ran on, in order (more than one: they changed mid-run)


@dataclass(frozen=True)
class Provenance:
    """Who ran the audit, where and from what (audit.evidence.provenance): the operator (user, host, start time
    in UTC, tool version), the CI run, the git state of the config's repository, every file the user supplied
    beside the bundle's copy, the audited model's class and state-dict SHA-256, and in-memory arrays' digests."""

    user: str
    host: str
    started: str
    tool_version: str
    ci: CIRun | None = None
    git: GitState | None = None
    files: tuple[SuppliedFile, ...] = ()
    model_class: str = ""
    model_state_sha256: str = ""
    data_source: str = ""
    arrays: tuple[ArrayDigest, ...] = ()


@dataclass(frozen=True)
class AuditResult:
    schema_version: str
    tool: dict[str, str]
    created: str
    verdict: Verdict
    candidate: str
    dataset: DatasetInfo
    model: ModelInfo
    policy: PolicyInfo
    config: dict[str, Any]
    environment: dict[str, str]
    variants: tuple[VariantResult, ...]
    findings: tuple[Finding, ...]
    nist: tuple[SubcategoryStatus, ...]
    not_measured: tuple[NotMeasured, ...] = ()
    threat_model: ThreatModelInfo | None = None
    residual_risk: tuple[str, ...] = ()
    reviewer: dict[str, str] = field(default_factory=dict)
    frameworks: dict[str, str] = field(default_factory=dict)  # editions the IDs refer to (ATLAS release pinned)
    duration_seconds: float = 0.0
    run_record: RunRecord | None = None
    evidence_gaps: tuple[str, ...] = ()  # what the run lacks of the policy's [evidence], one sentence each
    provenance: Provenance | None = None

    def to_dict(self) -> dict:
        return to_data(self)

    @classmethod
    def from_dict(cls, data: dict, details_types: Mapping[str, type] | None = None) -> AuditResult:
        """Build the result from its JSON form; ``details_types`` (check id -> Details class) types the details."""
        result = from_data(cls, data, "results")
        if not details_types:
            return result
        import dataclasses
        findings = []
        for i, f in enumerate(result.findings):
            tp = details_types.get(f.check)
            if tp is not None and isinstance(f.details, Mapping):
                f = dataclasses.replace(f, details=from_data(tp, dict(f.details), f"results.findings[{i}].details"))
            findings.append(f)
        return dataclasses.replace(result, findings=tuple(findings))

    def variant(self, name: str) -> VariantResult:
        return next(v for v in self.variants if v.name == name)

    def finding(self, check: str, variant: str | None = None) -> Finding | None:
        """The finding of ``check`` (for ``variant``, when the check is measured per variant), or None."""
        return next((f for f in self.findings if f.check == check and (variant is None or f.variant == variant)),
                    None)

"""The whole audit configuration (``AuditConfig``): frozen sections loaded strictly from TOML.

Every knob of a run lives here; CLI flags override individual keys. Validation happens once, at load time;
names checked against the registries of higher rooms (checks, sources, formats) are checked by the engine's
loader (``audit.engine.configure``), which is what the CLI and the Python API call.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from attacks.base import Norm
from audit.config.art_agreement import ArtAgreementConfig
from audit.config.attacks import AttackConfig
from audit.config.bounds import check_bounds
from audit.config.certified import CertifiedConfig
from audit.config.data_checks import BackdoorConfig, DatalabConfig, LabelIssuesConfig, LeakageConfig, TestOutliersConfig
from audit.config.defences import DefenceConfig
from audit.config.deployments import DeploymentConfig
from audit.config.execution import ExecutionConfig
from audit.config.names import display, identifier
from audit.config.sections import DataConfig, InputConfig, ModelConfig, OutputConfig, ReviewerConfig, TrainingConfig
from audit.config.threat import LEGACY_DEFENCE_EPS, LEGACY_GRID, ThreatModelConfig
from audit.config.tracking import TrackingConfig
from audit.core.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")
CHECK_SETTINGS = {"check_settings": True}   # field metadata: the field holds one check's settings


def check_sections() -> tuple[str, ...]:
    """The names of the fields holding a check's settings (each the id of its check)."""
    return tuple(f.name for f in dataclasses.fields(AuditConfig) if f.metadata.get("check_settings"))


@dataclass(frozen=True)
class AuditConfig:
    """A whole audit. ``candidate`` names the variant proposed for deployment: its findings gate the verdict.

    ``checks``: the enabled checks (empty: every check on by default); in the file the ``[checks]`` table's
    ``enabled`` (or the older top-level list ``checks = [...]``). Each check's settings are its ``[checks.<id>]``
    table (or the older top-level ``[<id>]``), loaded into the field of that name (the loader, ``audit.config.load``,
    turns either form into these fields; written out, a config has the older form, which loads the same).

    ``base_dir`` is set by the loader, not written in the file: the config file's folder (its modules are
    importable, and every relative path in the file was resolved against it).
    """

    threat_model: ThreatModelConfig = field(default_factory=ThreatModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    attacks: AttackConfig = field(default_factory=AttackConfig)
    defences: tuple[DefenceConfig, ...] = ()
    deployments: tuple[DeploymentConfig, ...] = field(default=(), metadata={"bound": 32})
    # each check's settings, its [checks.<id>] table (the check's ``Config``; a field named after its check)
    label_issues: LabelIssuesConfig = field(default_factory=LabelIssuesConfig, metadata=CHECK_SETTINGS)
    leakage: LeakageConfig = field(default_factory=LeakageConfig, metadata=CHECK_SETTINGS)
    datalab: DatalabConfig = field(default_factory=DatalabConfig, metadata=CHECK_SETTINGS)
    test_outliers: TestOutliersConfig = field(default_factory=TestOutliersConfig, metadata=CHECK_SETTINGS)
    backdoor: BackdoorConfig = field(default_factory=BackdoorConfig, metadata=CHECK_SETTINGS)
    art_agreement: ArtAgreementConfig = field(default_factory=ArtAgreementConfig, metadata=CHECK_SETTINGS)
    certified: CertifiedConfig = field(default_factory=CertifiedConfig, metadata=CHECK_SETTINGS)
    reviewer: ReviewerConfig = field(default_factory=ReviewerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    checks: tuple[str, ...] = field(default=(), metadata={"bound": 64})   # [checks] enabled: empty = the defaults
    candidate: str = "baseline"
    policy: str = "default"
    seed: int = 0
    device: str = "auto"
    base_dir: str = ""

    def __post_init__(self):
        """Settings left unset take the threat model's values (or the generic defaults when none is declared);
        set ones stay, so loading a resolved config again gives the same config."""
        tm, a = self.threat_model, self.attacks
        if a.norm is not None and tm.declared and Norm(a.norm) is not Norm(tm.norm):
            raise UsageError(f"attacks.norm: {Norm(a.norm).value!r} contradicts threat_model.norm "
                             f"{Norm(tm.norm).value!r}; the attacks measure the declared threat")
        if a.eps is None or a.norm is None:
            grid = a.eps if a.eps is not None else (tm.grid() if tm.declared else LEGACY_GRID)
            norm = a.norm if a.norm is not None else tm.norm
            object.__setattr__(self, "attacks", dataclasses.replace(a, eps=tuple(grid), norm=Norm(norm)))
        if any(d.eps is None for d in self.defences):
            eps = tm.eps if tm.declared else LEGACY_DEFENCE_EPS
            object.__setattr__(self, "defences", tuple(d if d.eps is not None else dataclasses.replace(d, eps=eps)
                                                       for d in self.defences))

    @property
    def variant_names(self) -> tuple[str, ...]:
        return ("baseline",) + tuple(d.name for d in self.defences)

    def validate(self, path: str) -> None:
        identifier("candidate", self.candidate)
        for i, d in enumerate(self.defences):
            identifier(f"defences[{i}].name", d.name)
        for i, dep in enumerate(self.deployments):
            identifier(f"deployments[{i}].name", dep.name)
        for key in ("name", "role", "date"):
            display(f"reviewer.{key}", getattr(self.reviewer, key))
        check_bounds(self)
        names = self.variant_names
        if len(set(names)) != len(names):
            raise UsageError("defences: names must be unique")
        deployed = [d.name for d in self.deployments]
        if len(set(deployed)) != len(deployed) or set(deployed) & set(names):
            raise UsageError("deployments: names must be unique and differ from the variants' names")
        for i, dep in enumerate(self.deployments):
            if dep.source and dep.source not in names:
                raise UsageError(f"deployments[{i}].source: {dep.source!r} is not a variant; valid: {', '.join(names)}")
        if self.candidate not in names:
            raise UsageError(f"candidate: {self.candidate!r} is not a variant; valid: {', '.join(names)}")
        if self.model.archive and any(not d.weights for d in self.defences):
            raise UsageError("defences: training a defence needs model.factory; an archive cannot be retrained")
        if self.device not in DEVICES:
            raise UsageError(f"device: {self.device!r} is not valid; valid: {', '.join(map(repr, DEVICES))}")
        if not 0 <= self.seed < 2**63:
            raise UsageError(f"seed: {self.seed} must be an integer in [0, 2**63)")


def replace(cfg: AuditConfig, **changes: Any) -> AuditConfig:
    return dataclasses.replace(cfg, **changes)

"""The run setup: what pre-flight established before any work, frozen. The config, the policy bound to the threat
model, the data as checked against the model, the device, the model as it came in, the user's probabilities, the
pre-flight warnings, and the eps the audit judges (computed once, here)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from audit.checks.robustness import Robustness
from audit.config import AuditConfig
from audit.config.policy import Policy
from audit.core.errors import UsageError
from audit.core.metrics import same_eps
from audit.data.splits import Splits
from audit.models.loading import LoadedModel


def pick_device(spec: str) -> torch.device:
    if spec == "cuda" and not torch.cuda.is_available():
        raise UsageError("device: 'cuda' was asked for but no CUDA device is available")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def judged_eps(config: AuditConfig, policy: Policy) -> float:
    """The eps the audit judges and headlines: the policy's robustness threshold's when the grid has it, else
    the declared threat model's, else the grid's middle one."""
    grid = config.attacks.eps or ()  # resolved at config load: never empty
    t = policy.thresholds.get(Robustness.id)
    for eps in (t.eps if t is not None else None, config.threat_model.eps):
        match = [e for e in grid if eps is not None and same_eps(eps, e)]
        if match:
            return match[0]
    return grid[len(grid) // 2]


@dataclass(frozen=True, eq=False)
class RunSetup:
    """Everything a run reads and never changes. ``trainable``: set when the model came in memory (whether a
    factory can rebuild it); ``user_pred_probs``: label_issues.pred_probs, read and checked at pre-flight."""

    config: AuditConfig
    policy: Policy
    data: Splits
    device: torch.device
    user_model: LoadedModel | None = None
    user_pred_probs: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    trainable: bool | None = None
    gated_eps: float = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "gated_eps", judged_eps(self.config, self.policy))

    @property
    def can_train(self) -> bool:
        """Whether models of the audited architecture can be built (a factory, not only an archive)."""
        return not self.config.model.archive if self.trainable is None else self.trainable

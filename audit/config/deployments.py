"""Deployment variants ([[deployments]]): what the candidate (or another variant) becomes when it ships."""
from __future__ import annotations

from dataclasses import dataclass

from audit.config.names import identifier
from audit.core.errors import UsageError

DEPLOYMENT_METHODS = ("dynamic_int8", "static_int8", "fp16", "bf16", "prune")


@dataclass(frozen=True)
class DeploymentConfig:
    """name: a label; method: "dynamic_int8" (int8 weights, activations quantised per batch; Linear layers),
    "static_int8" (int8 weights and activations with scales calibrated on ``calibration_rows`` training rows;
    FX graph mode, x86 backend), "fp16"/"bf16" (a cast of every parameter and input), "prune" (global magnitude
    pruning of every Conv/Linear weight to ``sparsity``, then ``finetune_epochs`` of the source's training recipe
    with the mask kept); source: the variant it derives from ("" = the candidate)."""

    name: str
    method: str
    source: str = ""
    sparsity: float = 0.5
    finetune_epochs: int = 0
    calibration_rows: int = 512

    def validate(self, path: str) -> None:
        if not self.name:
            raise UsageError(f"{path}.name: give each deployment a name")
        identifier(f"{path}.name", self.name)
        if self.method not in DEPLOYMENT_METHODS:
            raise UsageError(f"{path}.method: {self.method!r} is not valid; valid: "
                             f"{', '.join(map(repr, DEPLOYMENT_METHODS))}")
        if not 0.0 < self.sparsity < 1.0 or self.sparsity != self.sparsity:
            raise UsageError(f"{path}.sparsity: give a share in (0, 1)")
        if self.finetune_epochs < 0 or self.calibration_rows < 1:
            raise UsageError(f"{path}: finetune_epochs must be >= 0 and calibration_rows >= 1")

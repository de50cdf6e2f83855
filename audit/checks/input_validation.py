"""Input validation: what the pre-flight found suspicious but auditable about the model and data.

Hard problems (shape mismatch, NaN, labels out of range, eps in the wrong units, a non-deterministic model) stop
the run before training with exit code 2; this finding records the warnings, e.g. a model that outputs
probabilities (cross-entropy gradients through a softmax saturate: robustness is overstated, REFERENCE C9).
"""
from __future__ import annotations

from dataclasses import dataclass

from audit.checks.base import AuditContext, RunCheck, controls, register
from audit.core.result import Details, Measurement

CHECKED = ("model accepts the data's input shape", "logits shaped (N, num_classes)", "labels are integers in range",
           "no NaN/Inf inputs or logits", "inputs inside the clip range", "eps within the input range",
           "deterministic in eval mode", "no empty split")


@dataclass(frozen=True)
class InputValidationDetails(Details):
    warnings: tuple[str, ...]
    checked: tuple[str, ...]
    input_shape: tuple[int, ...]
    num_classes: int
    lazy: bool


@register
class InputValidation(RunCheck):
    id = "input_validation"
    rank = 10
    title = "Input validation (model and data pre-flight)"
    controls = controls(MEASURE_2_1="supporting", MAP_4_1="supporting", MEASURE_1_2="supporting")
    description = ("Model/data shapes, classes, finite values, clip range, eps units and determinism are checked "
                   "before the run; warnings are listed here.")
    Details = InputValidationDetails

    def measure(self, ctx: AuditContext) -> Measurement:
        d = ctx.data
        return Measurement(
            check=self.id, variant=None, metrics={"warnings": float(len(ctx.warnings))},
            details=InputValidationDetails(warnings=tuple(ctx.warnings), checked=CHECKED,
                                           input_shape=tuple(d.input_shape), num_classes=d.num_classes, lazy=d.lazy),
            summary="no input problems found" if not ctx.warnings else
                    f"{len(ctx.warnings)} warning(s): {ctx.warnings[0]}")

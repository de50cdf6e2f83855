"""Accuracy under common corruptions (images: noise, blur, contrast, brightness, pixelation, JPEG; tabular:
feature noise and dropout) at five severities, and the corruption error relative to the baseline model
(CE_c = sum_s err_model(c, s) / sum_s err_baseline(c, s); mCE = mean over corruptions; the baseline's is 1)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.run_view import CorruptionErrors
from audit.core.result import Details, Measurement
from audit.methods.corruptions import SEVERITIES

CORRUPTION_WORK = 3.0  # dry run: corrupting a row costs about two forward passes of a small model besides the forward


@dataclass(frozen=True)
class CorruptionsDetails(Details):
    accuracy: dict[str, dict[str, float]]      # corruption -> severity ("1".."5") -> accuracy
    corruption_error: dict[str, float | None]  # corruption -> CE relative to the baseline (None: baseline perfect)
    severities: tuple[int, ...]
    relative_to: str


@register
class Corruptions(VariantCheck):
    id = "corruptions"
    rank = 80
    title = "Robustness to common corruptions"
    controls = controls(MEASURE_2_5="supporting", MEASURE_2_6="direct", MAP_2_3="supporting")
    description = "Accuracy per corruption and severity; mean corruption error relative to the baseline."
    compared = (("mean_corruption_accuracy", "higher"), ("mce", "lower"))
    Details = CorruptionsDetails

    def cost(self, sheet: CostSheet, variant: str) -> None:
        n_te = sheet.n_test
        sheet.add(f"check {self.id}:{variant}", 0.0, 35.0 * n_te,
                  seconds=sheet.costs.corruption_call + 35.0 * n_te * sheet.costs.forward_row * CORRUPTION_WORK)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        err = ctx.get(CorruptionErrors, variant)
        base = ctx.get(CorruptionErrors, "baseline") if "baseline" in ctx.variants else err
        names = sorted({c for c, _ in err})
        ce = {}
        for c in names:
            denom = sum(base[(c, s)] for s in SEVERITIES)
            ce[c] = sum(err[(c, s)] for s in SEVERITIES) / denom if denom > 0 else None
        valid = [v for v in ce.values() if v is not None]
        mce = float(np.mean(valid)) if valid else None
        mean_acc = 1 - float(np.mean(list(err.values())))
        table = {c: {str(s): 1 - err[(c, s)] for s in SEVERITIES} for c in names}
        worst = min(names, key=lambda c: np.mean([1 - err[(c, s)] for s in SEVERITIES]))
        metrics = {"mean_corruption_accuracy": mean_acc}
        if mce is not None:
            metrics["mce"] = mce
        return Measurement(
            check=self.id, variant=variant, metrics=metrics,
            details=CorruptionsDetails(accuracy=table, corruption_error=ce, severities=SEVERITIES,
                                       relative_to="baseline"),
            summary=f"mean accuracy over {len(names)} corruptions x 5 severities {mean_acc:.1%}"
                    + (f"; mCE {mce:.2f} relative to the baseline" if mce is not None else "")
                    + f"; weakest: {worst.replace('_', ' ')}")

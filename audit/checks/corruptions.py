"""Accuracy under common corruptions (images: noise, blur, contrast, brightness, pixelation, JPEG; tabular:
feature noise and dropout) at five severities, and the corruption error relative to the baseline model
(CE_c = sum_s err_model(c, s) / sum_s err_baseline(c, s); mCE = mean over corruptions; the baseline's is 1)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.checks.base import AuditContext, controls
from audit.core.result import Details, Measurement
from audit.methods.corruptions import SEVERITIES


@dataclass(frozen=True)
class CorruptionsDetails(Details):
    accuracy: dict[str, dict[str, float]]      # corruption -> severity ("1".."5") -> accuracy
    corruption_error: dict[str, float | None]  # corruption -> CE relative to the baseline (None: baseline perfect)
    severities: tuple[int, ...]
    relative_to: str


class Corruptions:
    id = "corruptions"
    title = "Robustness to common corruptions"
    scope = "variant"
    controls = controls(MEASURE_2_5="supporting", MEASURE_2_6="direct", MAP_2_3="supporting")
    description = "Accuracy per corruption and severity; mean corruption error relative to the baseline."
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    Details = CorruptionsDetails

    def measure(self, ctx: AuditContext, variant: str | None) -> Measurement:
        err = ctx.corruption_errors(variant)
        base = ctx.corruption_errors("baseline") if "baseline" in ctx.variants else err
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

"""Accuracy under common corruptions (images: noise, blur, contrast, brightness, pixelation, JPEG; tabular:
feature noise and dropout) at five severities, and the corruption error relative to the baseline model
(CE_c = sum_s err_model(c, s) / sum_s err_baseline(c, s); mCE = mean over corruptions; the baseline's is 1)."""
from __future__ import annotations

import numpy as np
import torch

from attacks.base import frozen_eval
from audit.checks.base import controls
from audit.context import Context
from audit.corruptions import IMAGE, SEVERITIES, TABULAR, corrupt
from audit.result import Measurement

BATCH = 512


def corruption_errors(ctx: Context, variant: str) -> dict:
    """(corruption, severity) -> error rate of ``variant`` (cached; the same seeded corruptions for every variant)."""
    def compute():
        model = ctx.variants[variant].model
        names = IMAGE if ctx.data.kind == "image" else TABULAR
        out = {}
        for ci, name in enumerate(names):
            for s in SEVERITIES:
                g = torch.Generator().manual_seed(ctx.config.seed * 1000 + ci * 10 + s)
                wrong = 0
                for i in range(0, ctx.data.x_test.shape[0], BATCH):
                    xb = corrupt(name, ctx.data.x_test[i:i + BATCH], s, ctx.data.attack_clip, ctx.data.kind, g)
                    with frozen_eval(model), torch.no_grad():
                        pred = model(xb.to(ctx.device)).argmax(1).cpu()
                    wrong += int((pred != ctx.data.y_test[i:i + BATCH]).sum())
                out[(name, s)] = wrong / ctx.data.x_test.shape[0]
        return out
    return ctx.cached(("corruptions", variant), compute)


class Corruptions:
    id = "corruptions"
    title = "Robustness to common corruptions"
    scope = "variant"
    controls = controls(MEASURE_2_5="supporting", MEASURE_2_6="direct", MAP_2_3="supporting")
    description = "Accuracy per corruption and severity; mean corruption error relative to the baseline."

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        err = corruption_errors(ctx, variant)
        base = corruption_errors(ctx, "baseline") if "baseline" in ctx.variants else err
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
            details={"accuracy": table, "corruption_error": ce, "severities": list(SEVERITIES),
                     "relative_to": "baseline"},
            summary=f"mean accuracy over {len(names)} corruptions x 5 severities {mean_acc:.1%}"
                    + (f"; mCE {mce:.2f} relative to the baseline" if mce is not None else "")
                    + f"; weakest: {worst.replace('_', ' ')}")

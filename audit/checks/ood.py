"""Out-of-distribution detection: can the model's own scores tell test inputs from shifted ones?

Shifted sets come from the test split (audit/methods/ood.py) plus the user's own OOD inputs (``data.ood_path``).
Scores (higher = in distribution): maximum softmax probability (Hendrycks & Gimpel 2017), negative energy =
logsumexp of the logits (Liu et al. 2020), and cleanlab's OutOfDistribution confidence score fitted on the
training predictions. Reported: AUROC and the false-positive rate at 95% true-positive rate, per score and set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.run_view import TestLogits
from audit.core.result import Details, Measurement
from audit.methods.ood import auroc_fpr95, shifted_sets
from audit.methods.seeding import SHIFTED_INPUTS

MAX_POINTS = 2000
SCORES = ("msp", "energy", "cleanlab")


@dataclass(frozen=True)
class Separation:
    auroc: float
    fpr_at_95_tpr: float


@dataclass(frozen=True)
class OodDetails(Details):
    table: dict[str, dict[str, Separation]]   # shifted set -> score -> separation
    points: int
    scores: tuple[str, ...]


@register
class Ood(VariantCheck):
    id = "ood"
    rank = 90
    title = "Out-of-distribution detection"
    controls = controls(MEASURE_2_5="supporting", MEASURE_2_6="supporting", MANAGE_2_4="supporting")
    description = "AUROC and FPR at 95% TPR of MSP, energy and cleanlab OOD scores against shifted inputs."
    compared = (("auroc_msp_min", "higher"),)
    Details = OodDetails

    def cost(self, sheet: CostSheet, variant: str) -> None:
        sheet.add(f"check {self.id}:{variant}", 0.0, 5.0 * sheet.n_test)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        from cleanlab.outlier import OutOfDistribution as CleanlabOOD
        model = ctx.variants[variant].model
        n = min(MAX_POINTS, ctx.data.x_test.shape[0])
        test = ctx.get(TestLogits, variant)[:n]
        n_fit = min(5000, ctx.data.x_train.shape[0])
        fit_logits = ctx.logits(model, ctx.data.x_train[:n_fit])
        detector = CleanlabOOD()
        detector.fit(pred_probs=torch.softmax(fit_logits, 1).numpy(), labels=ctx.data.y_train[:n_fit].numpy(),
                     verbose=False)

        def scores(logits: torch.Tensor) -> dict[str, np.ndarray]:
            probs = torch.softmax(logits, 1)
            return {"msp": probs.amax(1).numpy(), "energy": torch.logsumexp(logits, 1).numpy(),
                    "cleanlab": detector.score(pred_probs=probs.numpy())}
        inside = scores(test)
        table: dict[str, dict[str, Separation]] = {}
        metrics: dict[str, float] = {}
        sets = shifted_sets(ctx.data.x_test[:n], ctx.data.attack_clip, ctx.data.kind,
                            SHIFTED_INPUTS.seed(ctx.config.seed), ctx.data.x_ood)
        for name, x in sets.items():
            out = scores(ctx.logits(model, x))
            table[name] = {}
            for score in inside:
                auroc, fpr = auroc_fpr95(inside[score], out[score])
                table[name][score] = Separation(auroc, fpr)
                metrics[f"auroc_{score}_{name}"] = auroc
        msp = [table[s]["msp"].auroc for s in table]
        metrics["auroc_msp_min"] = float(min(msp))
        worst = min(table, key=lambda s: table[s]["msp"].auroc)
        return Measurement(
            check=self.id, variant=variant, metrics=metrics,
            details=OodDetails(table=table, points=int(len(test)), scores=SCORES),
            summary=f"MSP AUROC {min(msp):.3f} on the hardest shift ({worst.replace('_', ' ')}), FPR@95%TPR "
                    f"{table[worst]['msp'].fpr_at_95_tpr:.1%}; energy AUROC {table[worst]['energy'].auroc:.3f}")

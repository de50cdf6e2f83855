"""Calibration of the clean predictions, post-hoc recalibration, and confidence under attack.

Recalibration maps are fitted on the validation split when the data has one; otherwise by 2-fold cross-fitting
on the test split (fit on one half, evaluate on the other, pooled), so no reported figure uses a map fitted on
the points it is evaluated on. Confidence under attack: PGD at the gated eps (the threat model's, else the grid's
middle) on up to 512 test points; a model that stays confident while wrong under attack gives its users no
warning signal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks import ATTACKS
from attacks.base import frozen_eval
from audit.checks.base import AuditContext, CostSheet, VariantCheck, controls, register
from audit.checks.run_view import TestLogits
from audit.core.result import Details, Measurement
from audit.methods.calibration import BINS, calibration_metrics, recalibrate, reliability

ADV_POINTS = 512


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class AdversarialConfidence:
    eps: float
    points: int
    wrong: int
    wrong_confidence: float | None   # mean top-class probability of the points PGD made wrong
    ece_under_attack: float


@dataclass(frozen=True)
class CalibrationDetails(Details):
    recalibration: dict[str, dict[str, float]]   # map ("none", "temperature", ...) -> its calibration metrics
    fitted: str                                  # where the recalibration maps were fitted
    reliability: tuple[ReliabilityBin, ...]
    adversarial: AdversarialConfidence
    bins: int


def _recalibrated(ctx: AuditContext, variant: str):
    logits, y = ctx.get(TestLogits, variant), ctx.data.y_test
    if ctx.data.x_val is not None and ctx.data.y_val is not None:
        fit = ctx.logits(ctx.variants[variant].model, ctx.data.x_val)
        return recalibrate(fit, ctx.data.y_val, logits), "fitted on the validation split"
    perm = np.random.default_rng(ctx.config.seed).permutation(len(y))
    halves = (perm[: len(y) // 2], perm[len(y) // 2:])
    pooled: dict = {}
    temps = []
    for fit_rows, ev in (halves, halves[::-1]):
        part = recalibrate(logits[fit_rows], y[fit_rows], logits[ev])
        temps.append(part.pop("_temperature"))
        for k, p in part.items():
            pooled.setdefault(k, np.zeros((len(y), logits.shape[1])))[ev] = p
    pooled["_temperature"] = float(np.mean(temps))
    return pooled, "2-fold cross-fitting on the test split (no validation split)"


def adversarial_confidence(ctx: AuditContext, variant: str) -> AdversarialConfidence:
    a = ctx.config.attacks
    eps = ctx.gated_eps
    n = min(ADV_POINTS, ctx.data.x_test.shape[0])
    model = ctx.variants[variant].model
    x, y = ctx.data.x_test[:n].to(ctx.device), ctx.data.y_test[:n].to(ctx.device)
    clip = ctx.data.attack_clip
    if isinstance(clip[0], torch.Tensor):
        clip = (clip[0].to(ctx.device), clip[1].to(ctx.device))
    out = ATTACKS["pgd"](model, x, y, eps=eps, norm=a.norm, clip=clip, steps=a.pgd_steps,
                         generator=torch.Generator().manual_seed(ctx.config.seed))
    with frozen_eval(model), torch.no_grad():
        probs = torch.softmax(model(out.x_adv).float(), 1).cpu()
    wrong = probs.argmax(1) != y.cpu()
    conf = probs.max(1).values
    return AdversarialConfidence(eps=eps, points=n, wrong=int(wrong.sum()),
                                 wrong_confidence=float(conf[wrong].mean()) if wrong.any() else None,
                                 ece_under_attack=calibration_metrics(probs.numpy(), y.cpu().numpy())["ece"])


@register
class Calibration(VariantCheck):
    id = "calibration"
    rank = 70
    title = "Calibration and confidence under attack"
    controls = controls(MEASURE_2_5="direct", MEASURE_2_6="supporting", MAP_2_3="supporting")
    description = ("ECE (equal-width and equal-mass), MCE, Brier, NLL and reliability of the clean test "
                   "predictions; temperature, vector and isotonic recalibration; confidence when wrong under PGD.")
    compared = (("ece", "lower"), ("adversarial_wrong_confidence", "lower"))
    Details = CalibrationDetails

    def cost(self, sheet: CostSheet, variant: str) -> None:
        sheet.add(f"check {self.id}:{variant}", sheet.n_test * 10, 2.0 * sheet.n_test)

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        y = ctx.data.y_test.numpy()
        probs, how = _recalibrated(ctx, variant)
        base = calibration_metrics(probs["none"], y)
        table = {k: calibration_metrics(p, y) for k, p in probs.items() if not k.startswith("_")}
        adv = adversarial_confidence(ctx, variant)
        metrics = {k: float(v) for k, v in base.items()}
        metrics.update({f"ece_{k}": t["ece"] for k, t in table.items() if k != "none"})
        metrics["temperature"] = probs["_temperature"]
        if adv.wrong_confidence is not None:
            metrics["adversarial_wrong_confidence"] = adv.wrong_confidence
        best = min(table, key=lambda k: table[k]["ece"])
        return Measurement(
            check=self.id, variant=variant, metrics=metrics,
            details=CalibrationDetails(recalibration=table, fitted=how,
                                       reliability=tuple(ReliabilityBin(**b) for b in reliability(probs["none"], y)),
                                       adversarial=adv, bins=BINS),
            summary=f"ECE {base['ece']:.3f} (MCE {base['mce']:.3f}, Brier {base['brier']:.3f}); "
                    f"after temperature scaling (T={probs['_temperature']:.2f}) {table['temperature']['ece']:.3f}; "
                    f"best map: {best}"
                    + (f"; wrong under PGD at eps {adv.eps:g} with mean confidence {adv.wrong_confidence:.1%}"
                       if adv.wrong_confidence is not None else ""))

"""Retraining without the suspected label errors: the baseline recipe (same architecture, seed and budget) trained
again on the training split minus the rows the label-issue check flagged, and its test accuracy against the
baseline's on the same test points (paired, McNemar's exact test). Opt-in: ``label_issues.retrain_cleaned``.

Evidence for the mitigation step of label-flipping (availability) poisoning, NIST AI 100-2 §2.3.1 (training-data
sanitisation), and for MANAGE 1.3: the response to a data finding is tried and its effect measured.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks.training import Recipe, train
from audit.checks.base import AuditContext, CostSheet, RunCheck, controls, register, settings
from audit.checks.label_issues import LabelIssues
from audit.core.result import Details, Measurement
from audit.core.stats import mcnemar_exact, wilson_interval
from audit.data.rows import take
from audit.methods.seeding import TRAIN, seeded


@dataclass(frozen=True)
class RetrainCleanedDetails(Details):
    removed_rows: int
    kept_rows: int
    test_rows: int
    baseline_accuracy: float
    cleaned_accuracy: float
    cleaned_ci: tuple[float, float]
    only_baseline_correct: int
    only_cleaned_correct: int
    mcnemar_p: float
    recipe: str


@register
class RetrainCleaned(RunCheck):
    id = "retrain_cleaned"
    rank = 170
    title = "Retraining without the suspected label errors"
    controls = controls(MANAGE_1_3="direct", MEASURE_2_5="supporting", MAP_2_3="supporting")
    description = ("The baseline recipe trained again without the training rows flagged as label errors; change in "
                   "test accuracy on the same points, with McNemar's exact test.")
    requires = (LabelIssues,)   # the training rows it flagged
    Details = RetrainCleanedDetails

    def not_applicable(self, ctx: AuditContext) -> str:
        if not settings(LabelIssues, ctx.config).retrain_cleaned:
            return "off; set label_issues.retrain_cleaned = true to run it"
        if not ctx.can_train:
            return "retraining needs model.factory; an archive cannot be retrained"
        return ""

    def cost(self, sheet: CostSheet) -> None:
        if settings(LabelIssues, sheet.config).retrain_cleaned and sheet.trainable:
            sheet.add(f"check {self.id}", sheet.config.training.epochs * sheet.n_train, train=True)

    def measure(self, ctx: AuditContext) -> Measurement:
        flagged = ctx.measurement(LabelIssues.id)
        assert flagged is not None   # a required check: it ran before this one
        ranked = flagged.details.indices_ranked
        d = ctx.data
        n = len(d.y_train)
        keep = np.ones(n, dtype=bool)
        keep[np.asarray(ranked, dtype=np.int64)] = False
        kept = np.flatnonzero(keep)
        rows = torch.from_numpy(kept)
        t = ctx.config.training
        with seeded(TRAIN.seed(ctx.config.seed)):
            model = ctx.models.build_model()
            train(model, take(d.x_train, kept), d.y_train[rows],
                  Recipe(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, seed=ctx.config.seed),
                  desc="train without flagged labels")
        y = d.y_test
        base_ok = ctx.clean_correct("baseline")
        new_ok = (ctx.logits(model, d.x_test).argmax(1) == y).numpy()
        m = len(y)
        base_acc, new_acc = float(base_ok.mean()), float(new_ok.mean())
        only_base, only_new = int((base_ok & ~new_ok).sum()), int((new_ok & ~base_ok).sum())
        p = mcnemar_exact(only_base, only_new)
        lo, hi = wilson_interval(int(new_ok.sum()), m)
        note = "" if ctx.variants["baseline"].train_stats is not None else \
            " (the baseline is the model as supplied; the retrained model uses this run's training recipe)"
        details = RetrainCleanedDetails(
            removed_rows=int((~keep).sum()), kept_rows=int(keep.sum()), test_rows=m, baseline_accuracy=base_acc,
            cleaned_accuracy=new_acc, cleaned_ci=(lo, hi), only_baseline_correct=only_base,
            only_cleaned_correct=only_new, mcnemar_p=p,
            recipe=f"natural training, {t.epochs} epochs, batch {t.batch_size}, lr {t.lr}, seed {ctx.config.seed}"
                   f"{note}")
        delta = new_acc - base_acc
        return Measurement(
            check=self.id, metrics={"accuracy_delta": delta, "cleaned_accuracy": new_acc,
                                    "removed_rows": float((~keep).sum())}, details=details,
            summary=(f"without the {int((~keep).sum())} flagged training rows, test accuracy {new_acc:.1%} vs "
                     f"{base_acc:.1%} ({100 * delta:+.1f} points; McNemar p = {p:.3g}, {only_new} points gained, "
                     f"{only_base} lost)"))

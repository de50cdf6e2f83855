"""Impact of the flagged test rows: clean and worst-case robust accuracy of every variant on the whole test split
and on the test split without the rows the data checks flagged (leaked copies of training rows, and test labels
cleanlab doubts). A large difference means the headline numbers depend on questionable test data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.checks.base import AuditContext, VariantCheck, controls, register
from audit.checks.leakage import InputLeaks
from audit.checks.run_view import RobustnessGrid, TestLabelIssues
from audit.core.metrics import WORST_CASE, Accuracy
from audit.core.result import Details, Measurement


@dataclass(frozen=True)
class Impact:
    all: float
    without_flagged: float
    delta: float
    ci_without: tuple[float, float]


@dataclass(frozen=True)
class DataImpactDetails(Details):
    flagged: dict[str, tuple[int, ...]]   # "leaked" / "label_issue" -> flagged test rows
    rows: dict[str, Impact]               # "clean" / "worst_case@<eps>" -> accuracy with and without them
    eps: float
    kept: int
    n: int


def flagged_test_rows(ctx: AuditContext) -> dict[str, np.ndarray]:
    out = {}
    if not ctx.data.lazy:
        out["leaked"] = np.flatnonzero(ctx.get(InputLeaks)[1].flagged)
    if "baseline" in ctx.variants:
        out["label_issue"] = np.asarray(ctx.get(TestLabelIssues), dtype=int)
    return out


@register
class DataImpact(VariantCheck):
    id = "data_impact"
    rank = 160
    title = "Impact of flagged test rows on the reported accuracies"
    controls = controls(MEASURE_2_1="supporting", MEASURE_2_5="supporting")
    description = ("Clean and worst-case robust accuracy with and without the test rows flagged as leaked or "
                   "mislabelled.")
    Details = DataImpactDetails

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        flagged = flagged_test_rows(ctx)
        n = ctx.data.x_test.shape[0]
        drop = np.zeros(n, dtype=bool)
        for flagged_rows in flagged.values():
            drop[flagged_rows] = True
        ev = ctx.get(RobustnessGrid, variant)
        clean = ctx.clean_correct(variant)
        eps = ctx.gated_eps
        robust = ev.correct[(WORST_CASE, eps)]
        rows: dict[str, Impact] = {}
        for name, mask in (("clean", clean), (f"worst_case@{eps:g}", robust)):
            full, kept = Accuracy.of(mask), Accuracy.of(mask[~drop])
            rows[name] = Impact(all=full.value, without_flagged=kept.value, delta=kept.value - full.value,
                                ci_without=(kept.ci_low, kept.ci_high))
        rob = rows[f"worst_case@{eps:g}"]
        metrics = {"flagged_test_rows": float(drop.sum()), "clean_accuracy_delta": rows["clean"].delta,
                   "robust_accuracy_delta": rob.delta}
        counts = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in flagged.items())
        return Measurement(check=self.id, variant=variant, metrics=metrics,
                           details=DataImpactDetails(flagged={k: tuple(int(i) for i in v) for k, v in flagged.items()},
                                                     rows=rows, eps=eps, kept=int((~drop).sum()), n=n),
                           summary=(f"without the {int(drop.sum())} flagged test rows ({counts}): clean "
                                    f"{rows['clean'].all:.1%} -> {rows['clean'].without_flagged:.1%}, worst case at "
                                    f"eps {eps:g} {robust.mean():.1%} -> {rob.without_flagged:.1%}"))

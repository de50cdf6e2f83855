"""Impact of the flagged test rows: clean and worst-case robust accuracy of every variant on the whole test split
and on the test split without the rows the data checks flagged (leaked copies of training rows, and test labels
cleanlab doubts). A large difference means the headline numbers depend on questionable test data."""
from __future__ import annotations

import numpy as np

from audit.checks.base import controls
from audit.checks.label_issues import test_label_issues
from audit.checks.leakage import input_space_leaks
from audit.checks.robustness import gated_eps, robustness_eval
from audit.context import Context
from audit.evaluation import WORST_CASE, Accuracy
from audit.result import Measurement


def flagged_test_rows(ctx: Context) -> dict[str, np.ndarray]:
    out = {}
    if not ctx.data.lazy:
        out["leaked"] = np.flatnonzero(input_space_leaks(ctx)[1].flagged)
    if "baseline" in ctx.variants:
        out["label_issue"] = np.asarray(test_label_issues(ctx), dtype=int)
    return out


class DataImpact:
    id = "data_impact"
    title = "Impact of flagged test rows on the reported accuracies"
    scope = "variant"
    controls = controls(MEASURE_2_1="supporting", MEASURE_2_5="supporting")
    description = ("Clean and worst-case robust accuracy with and without the test rows flagged as leaked or "
                   "mislabelled.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        flagged = flagged_test_rows(ctx)
        n = ctx.data.x_test.shape[0]
        drop = np.zeros(n, dtype=bool)
        for rows in flagged.values():
            drop[rows] = True
        ev = robustness_eval(ctx, variant)
        clean = (ctx.test_logits(variant).argmax(1) == ctx.data.y_test).numpy()
        eps = gated_eps(ctx)
        robust = ev.correct[(WORST_CASE, eps)]
        rows = {}
        for name, mask in (("clean", clean), (f"worst_case@{eps:g}", robust)):
            full, kept = Accuracy.of(mask), Accuracy.of(mask[~drop])
            rows[name] = {"all": full.value, "without_flagged": kept.value, "delta": kept.value - full.value,
                          "ci_without": [kept.ci_low, kept.ci_high]}
        metrics = {"flagged_test_rows": float(drop.sum()), "clean_accuracy_delta": rows["clean"]["delta"],
                   "robust_accuracy_delta": rows[f"worst_case@{eps:g}"]["delta"]}
        counts = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in flagged.items())
        return Measurement(check=self.id, variant=variant, metrics=metrics,
                           details={"flagged": {k: [int(i) for i in v] for k, v in flagged.items()},
                                    "rows": rows, "eps": eps, "kept": int((~drop).sum()), "n": n},
                           summary=(f"without the {int(drop.sum())} flagged test rows ({counts}): clean "
                                    f"{rows['clean']['all']:.1%} -> {rows['clean']['without_flagged']:.1%}, "
                                    f"worst case at eps {eps:g} {robust.mean():.1%} -> "
                                    f"{rows[f'worst_case@{eps:g}']['without_flagged']:.1%}"))

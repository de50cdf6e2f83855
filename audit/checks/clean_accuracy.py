"""Clean accuracy on the held-out test split, with a 95% Wilson interval and per-class accuracy."""
from __future__ import annotations

from dataclasses import dataclass

from audit.checks.base import AuditContext, VariantCheck, controls, register
from audit.core.metrics import Accuracy
from audit.core.result import Details, Measurement


@dataclass(frozen=True)
class CleanAccuracyDetails(Details):
    n: int
    correct: int
    per_class_accuracy: dict[str, float | None]  # class name -> accuracy (None: no test point of the class)


@register
class CleanAccuracy(VariantCheck):
    id = "clean_accuracy"
    rank = 20
    title = "Clean accuracy"
    controls = controls(MEASURE_2_3="direct", MEASURE_2_5="supporting", MAP_2_3="supporting")
    description = "Share of held-out test points classified correctly, with a 95% Wilson interval."
    Details = CleanAccuracyDetails

    def measure(self, ctx: AuditContext, variant: str) -> Measurement:
        ok = ctx.clean_correct(variant)
        acc = Accuracy.of(ok)
        y = ctx.data.y_test.numpy()
        per_class = {ctx.data.class_names[c]: float(ok[y == c].mean()) if (y == c).any() else None
                     for c in range(ctx.data.num_classes)}
        worst = min((v, k) for k, v in per_class.items() if v is not None)
        return Measurement(
            check=self.id, variant=variant,
            metrics={"clean_accuracy": acc.value, "ci_low": acc.ci_low, "ci_high": acc.ci_high},
            details=CleanAccuracyDetails(n=acc.n, correct=acc.correct, per_class_accuracy=per_class),
            summary=f"{acc.value:.1%} of {acc.n} test points correct (95% CI {acc.ci_low:.1%}-{acc.ci_high:.1%}); "
                    f"weakest class {worst[1]} at {worst[0]:.1%}")

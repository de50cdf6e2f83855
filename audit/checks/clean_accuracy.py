"""Clean accuracy on the held-out test split, with a 95% Wilson interval and per-class accuracy."""
from __future__ import annotations

import numpy as np

from audit.checks.base import controls
from audit.context import Context
from audit.evaluation import Accuracy
from audit.result import Measurement


def clean_correct(ctx: Context, variant: str) -> np.ndarray:
    """Per-test-point correctness of ``variant`` on clean inputs (cached through the context's logits)."""
    return (ctx.test_logits(variant).argmax(1) == ctx.data.y_test).numpy()


class CleanAccuracy:
    id = "clean_accuracy"
    title = "Clean accuracy"
    scope = "variant"
    controls = controls(MEASURE_2_3="direct", MEASURE_2_5="supporting", MAP_2_3="supporting")
    description = "Share of held-out test points classified correctly, with a 95% Wilson interval."

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        ok = clean_correct(ctx, variant)
        acc = Accuracy.of(ok)
        y = ctx.data.y_test.numpy()
        per_class = {ctx.data.class_names[c]: float(ok[y == c].mean()) if (y == c).any() else None
                     for c in range(ctx.data.num_classes)}
        worst = min((v, k) for k, v in per_class.items() if v is not None)
        return Measurement(
            check=self.id, variant=variant,
            metrics={"clean_accuracy": acc.value, "ci_low": acc.ci_low, "ci_high": acc.ci_high},
            details={"n": acc.n, "correct": acc.correct, "per_class_accuracy": per_class},
            summary=f"{acc.value:.1%} of {acc.n} test points correct (95% CI {acc.ci_low:.1%}-{acc.ci_high:.1%}); "
                    f"weakest class {worst[1]} at {worst[0]:.1%}")

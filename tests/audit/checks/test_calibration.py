"""calibration: ECE of the clean predictions, recalibration, confidence under attack; what compare diffs."""
from __future__ import annotations

from audit.checks import CHECKS


def test_it_measures_the_metrics_compare_diffs(small_ctx):
    check = CHECKS["calibration"]
    m = check.measure(small_ctx, "baseline")
    assert {metric for metric, _ in check.compared} <= set(m.metrics)
    assert 0.0 <= m.metrics["ece"] <= 1.0
    assert sum(b.count for b in m.details.reliability) == small_ctx.data.y_test.shape[0]

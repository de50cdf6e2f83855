"""corruptions: accuracy under common corruptions and the error relative to the baseline (mCE)."""
from __future__ import annotations

from audit.checks import CHECKS


def test_the_baselines_mce_is_one_and_the_compared_metrics_are_measured(small_ctx):
    check = CHECKS["corruptions"]
    base = check.measure(small_ctx, "baseline")
    assert {metric for metric, _ in check.compared} <= set(base.metrics)
    assert abs(base.metrics["mce"] - 1.0) < 1e-9   # relative to itself
    other = check.measure(small_ctx, "at")
    assert 0.0 <= other.metrics["mean_corruption_accuracy"] <= 1.0 and other.metrics["mce"] > 0

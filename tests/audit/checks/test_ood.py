"""ood: how well the maximum softmax probability separates shifted inputs from the test set."""
from __future__ import annotations

from audit.checks import CHECKS


def test_it_measures_auroc_in_range_and_the_minimum_is_the_smallest(small_ctx):
    check = CHECKS["ood"]
    m = check.measure(small_ctx, "baseline")
    assert {metric for metric, _ in check.compared} <= set(m.metrics)
    aurocs = [v for k, v in m.metrics.items() if k.startswith("auroc_") and k != "auroc_msp_min"]
    assert aurocs and all(0.0 <= a <= 1.0 for a in aurocs)
    assert m.metrics["auroc_msp_min"] == min(aurocs)

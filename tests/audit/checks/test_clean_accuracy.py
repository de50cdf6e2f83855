"""clean_accuracy: the share of test points correct, its Wilson interval and per-class accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from audit.checks import CHECKS


def test_it_counts_the_test_points_the_variant_gets_right(small_ctx):
    check = CHECKS["clean_accuracy"]
    m = check.measure(small_ctx, "baseline")
    ok = np.asarray(small_ctx.clean_correct("baseline"))
    assert m.details.n == len(ok) == small_ctx.data.y_test.shape[0] and m.details.correct == int(ok.sum())
    assert m.metrics["clean_accuracy"] == pytest.approx(ok.mean())
    assert m.metrics["ci_low"] <= m.metrics["clean_accuracy"] <= m.metrics["ci_high"]


def test_per_class_accuracy_weighs_back_to_the_total(small_ctx):
    m = CHECKS["clean_accuracy"].measure(small_ctx, "baseline")
    y = small_ctx.data.y_test.numpy()
    counts = {small_ctx.data.class_names[k]: int((y == k).sum()) for k in range(small_ctx.data.num_classes)}
    total = sum(acc * counts[name] for name, acc in m.details.per_class_accuracy.items() if acc is not None)
    assert total / len(y) == pytest.approx(m.metrics["clean_accuracy"])
    assert "weakest class" in m.summary

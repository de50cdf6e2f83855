"""input_validation: the pre-flight's warnings as a finding."""
from __future__ import annotations

from types import SimpleNamespace

from audit.checks import CHECKS


def test_it_counts_the_preflight_warnings(small_ctx):
    check = CHECKS["input_validation"]
    m = check.measure(small_ctx)
    assert m.metrics["warnings"] == len(small_ctx.warnings) and m.variant is None
    assert m.details.input_shape == tuple(small_ctx.data.x_train.shape[1:])
    warned = check.measure(SimpleNamespace(data=small_ctx.data, warnings=["model outputs look like probabilities"]))
    assert warned.metrics["warnings"] == 1 and "probabilities" in warned.summary
    assert warned.details.warnings == ("model outputs look like probabilities",)

"""art_agreement: our attacks against ART's reference implementations on a subsample at the gated eps."""
from __future__ import annotations

import pytest

from audit.checks import CHECKS
from audit.checks.art_agreement import RANDOM_SEARCH


def test_the_gated_metric_is_the_largest_gradient_attack_shortfall(small_ctx):
    m = CHECKS["art_agreement"].measure(small_ctx, "baseline")   # not the candidate: no Square cross-check
    attacks = m.details.attacks
    assert attacks and m.details.eps == small_ctx.gated_eps
    for r in attacks.values():
        assert r.shortfall == pytest.approx(r.ours - r.art)
    gradient = [r.shortfall for k, r in attacks.items() if k not in RANDOM_SEARCH]
    assert m.metrics["max_shortfall_vs_art"] == max(gradient)
    assert "square" not in attacks and "candidate only" in m.details.settings["square"]

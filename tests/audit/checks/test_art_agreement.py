"""art_agreement: our attacks against ART's reference implementations on a subsample at the gated eps, compared point
by point; the judged metric is the largest significant shortfall; every verified break goes to the ledger."""
from __future__ import annotations

import numpy as np
import pytest

from audit.checks import CHECKS
from audit.checks.art_agreement import RANDOM_SEARCH
from audit.checks.run_view import Breaks


@pytest.fixture(scope="module")
def measured(small_ctx):
    before = len(small_ctx.get(Breaks, "baseline").records)
    m = CHECKS["art_agreement"].measure(small_ctx, "baseline")   # not the candidate: no Square cross-check
    return m, small_ctx.get(Breaks, "baseline").records[before:]


def test_the_gated_metric_is_the_largest_significant_gradient_attack_shortfall(measured, small_ctx):
    m, _ = measured
    attacks = m.details.attacks
    assert attacks and m.details.eps == small_ctx.gated_eps
    for r in attacks.values():
        assert r.shortfall == pytest.approx(r.ours - r.art)
        assert r.shortfall == pytest.approx((r.only_art - r.only_ours) / r.points)
        assert 0 < r.p_value <= 1 and len(r.only_art_indices) == min(r.only_art, 50)
    gradient = {k: r for k, r in attacks.items() if k not in RANDOM_SEARCH}
    assert m.metrics["max_shortfall_vs_art"] == max(r.shortfall for r in gradient.values())
    significant = [r.shortfall for r in gradient.values() if r.p_value < m.details.alpha]
    assert m.metrics["significant_shortfall_vs_art"] == max(significant, default=0.0)
    assert set(m.details.significant) == {k for k, r in gradient.items() if r.p_value < m.details.alpha}
    assert "square" not in attacks and "candidate only" in m.details.settings["square"]


def test_a_subsample_too_small_to_detect_the_tolerance_says_so(measured):
    m, _ = measured   # 32 points (art_crosscheck_points): 5 points at alpha 0.05 are 15.6%, above 3%
    assert all(r.points == 32 for r in m.details.attacks.values())
    assert "too few points to detect a 3.0% shortfall" in m.details.too_small and "needs 167" in m.details.too_small
    assert m.details.too_small in m.summary


def test_both_sides_verified_breaks_are_recorded_on_sorted_test_indices(measured, small_ctx):
    m, records = measured
    sources = {r.source for r in records}
    for name in m.details.attacks:
        assert f"ART {m.details.art_classes[name]} (cross-check)" in sources
        assert f"{name.upper()} ours (ART cross-check)" in sources
    clean = small_ctx.clean_correct("baseline")
    for r in records:
        assert r.check == "art_agreement" and r.eps == small_ctx.gated_eps
        assert np.all(np.diff(r.population) > 0)
        assert np.array_equal(r.attacked, clean[r.population]) and not np.any(r.broken & ~r.attacked)
    art = {r.source: r for r in records if r.source.startswith("ART ")}
    ours = {r.source: r for r in records if not r.source.startswith("ART ")}
    for name, c in m.details.attacks.items():
        a, o = art[f"ART {m.details.art_classes[name]} (cross-check)"], ours[f"{name.upper()} ours (ART cross-check)"]
        assert np.array_equal(a.population[a.broken & ~o.broken], np.array(c.only_art_indices, dtype=np.int64))
        assert a.attacked.sum() - a.broken.sum() == round(c.art * c.points)


def test_the_report_shows_the_paired_counts_and_says_when_the_subsample_is_too_small(measured):
    from audit.engine.judge import judge
    from reports.templating import render
    from reports.view import pct
    m, _ = measured
    finding = judge(m, CHECKS["art_agreement"], None, False)
    html = render("checks/art_agreement.html.j2", autoescape=True, findings=[finding], pct=pct)
    assert "<th scope=\"col\">Only ART</th>" in html and "exact one-sided paired test" in html
    assert "too few points to detect a 3.0% shortfall" in html
    for a in m.details.attacks.values():
        assert f"<td class=\"num\">{a.only_art}</td><td class=\"num\">{a.only_ours}</td>" in html
        if a.only_art_indices:
            assert ", ".join(map(str, a.only_art_indices)) in html

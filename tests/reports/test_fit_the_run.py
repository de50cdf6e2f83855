"""Headings, charts and cells fit the run (issue 29): no defence wording without defences, no chart with fewer
than two points, a supplied model's training cell says what it is; on tiny results built in test_actions."""
from __future__ import annotations

import dataclasses
import re

from audit.core.result import Status, Verdict
from reports.html import render_html
from reports.view import robustness_chart, robustness_heading, tradeoff_chart
from tests.reports.test_actions import tiny, variant

DEFENCE = {"name": "pgd_at", "method": "pgd"}


def defended():
    return tiny(Verdict.NO_GO, candidate="pgd_at", defences=(DEFENCE,),
                variants=(variant("baseline", 0.3, candidate=False, trained=True),
                          variant("pgd_at", 0.6, trained=True)))


def table_row(html: str, name: str) -> str:
    return re.search(rf"<tr[^>]*><th scope=\"row\">{name}\b.*?</tr>", html, re.S).group(0)


def test_without_defences_the_section_has_no_defence_wording():
    html = render_html(tiny())
    assert robustness_heading(tiny()) == "Robustness under attack"
    assert '<h2 id="robustness-by-variant">Robustness under attack</h2>' in html
    assert "adversarial training</h2>" not in html and '<th scope="col">Model</th>' in html
    assert "Robustness with and without adversarial training" in render_html(defended())
    assert robustness_heading(tiny(defences=({"name": "reg", "method": "none"},))).endswith("declared defences")


def test_a_single_variant_gets_no_two_point_chart_but_a_sentence():
    one, two = tiny(), defended()
    assert tradeoff_chart(one) == "" and "<svg" in tradeoff_chart(two)
    html = render_html(one)
    assert "no clean-vs-robust trade-off to chart" in html and html.count("<svg") == 1  # the curve only
    assert "★ best under the policy" not in html
    bare = dataclasses.replace(one, variants=tuple(dataclasses.replace(v, robustness=(), clean_accuracy=None)
                                                   for v in one.variants))
    assert robustness_chart(bare) == "" and "No robustness curve" in render_html(bare)


def test_a_supplied_models_training_cell_says_so():
    cell = table_row(render_html(tiny()), "baseline").split("<td")[-1]
    assert "supplied model (not trained here)" in cell and "n/a" not in cell
    trained = table_row(render_html(defended()), "pgd_at").split("<td")[-1]
    assert "12.5 s, 3 ep" in trained and "supplied" not in trained


def certified_result():
    """The tiny NO-GO with a certified finding on the candidate: 40% and 20% proven at eps 0.05 and 0.1."""
    from audit.checks.certified import CertifiedDetails, CertifiedPoint
    from audit.checks.validity.base import ValidityResult
    from tests.reports.test_actions import finding
    pts = tuple(CertifiedPoint(e, c, c - 0.04, c + 0.04, 450, emp, emp - c, 1.0)
                for e, c, emp in ((0.05, 0.4, 0.627), (0.1, 0.2, 0.527)))
    details = CertifiedDetails("crown", "linf", pts, 0.1, (), 2, (), 450,
                               ValidityResult("C17", "certificates sound", Status.PASS, "0 violations"),
                               band="between 20.0% (certified) and 52.7% (worst of 2 attacks) at Linf eps 0.1")
    cert = dataclasses.replace(finding("certified", Status.INFO, "baseline", gating=False), details=details)
    base = tiny()
    return dataclasses.replace(base, findings=base.findings + (cert,)), pts


def test_the_robustness_chart_brackets_the_truth_where_the_run_certified():
    """The certified lower bound is drawn dotted in the variant's colour from the clean accuracy, with the band up
    to the worst case hatched (unknown) and a caption saying which is which; without certificates none of it."""
    result, pts = certified_result()
    chart = robustness_chart(result)
    assert chart.count('data-band="unknown"') == 1 and "baseline certified" in chart
    line = r'<polyline points="([^"]+)" fill="none" stroke="(#[0-9a-f]+)"[^>]*?(stroke-dasharray="[^"]+")?/>'
    lines = re.findall(line, chart)
    (measured, colour, dash), (bound, bound_colour, bound_dash) = lines
    assert colour == bound_colour and dash == "" and bound_dash == 'stroke-dasharray="1.5 3"'
    ys = [float(p.split(",")[1]) for p in bound.split()]
    worst = [float(p.split(",")[1]) for p in measured.split()]
    assert len(ys) == 3 and ys[0] == worst[0]            # both start at the clean accuracy (eps 0)
    assert all(b > w for b, w in zip(ys[1:], worst[1:], strict=True))   # SVG y grows downwards: the bound is below
    html = render_html(result)
    assert "<figcaption" in html and "Hatched: between the two" in html
    assert "between 20.0% (certified) and 52.7%" in html
    plain = tiny()
    assert 'data-band' not in robustness_chart(plain) and "<figcaption" not in render_html(plain)


def test_an_unsound_certificate_is_not_drawn_as_a_bound():
    """C17 failed: the certificates prove nothing, so neither the dotted bound nor the caption appear."""
    result, _ = certified_result()
    cert = result.findings[-1]
    unsound = dataclasses.replace(cert.details, soundness=dataclasses.replace(cert.details.soundness,
                                                                              status=Status.FAIL))
    bad = dataclasses.replace(result, findings=result.findings[:-1] + (dataclasses.replace(cert, details=unsound),))
    assert "certified" not in robustness_chart(bad) and "<figcaption" not in render_html(bad)


def test_two_audits_charts_in_one_page_have_distinct_pattern_ids():
    """Two results' charts in one notebook page: their hatch patterns must not share an id."""
    a, _ = certified_result()
    b = dataclasses.replace(a, variants=(variant("baseline", 0.4),))
    ids = [re.findall(r'<pattern id="([^"]+)"', robustness_chart(r)) for r in (a, b)]
    assert ids[0] and ids[1] and not set(ids[0]) & set(ids[1])

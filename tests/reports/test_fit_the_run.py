"""Headings, charts and cells fit the run (issue 29): no defence wording without defences, no chart with fewer
than two points, a supplied model's training cell says what it is; on tiny results built in test_actions."""
from __future__ import annotations

import dataclasses
import re

from audit.core.result import Verdict
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

"""Contract tests over every registered format, on the real demo result."""
import json
import re
from dataclasses import replace
from importlib import resources

import jsonschema
import pytest

from audit.checks import details_types
from audit.core.result import AuditResult
from audit.core.text import md_inline
from audit.frameworks.controls import subcategories
from reports import DEFAULT_FORMATS, FORMATS


@pytest.mark.parametrize("fmt", sorted(f for f in DEFAULT_FORMATS if f != "csv"))  # csv: rows, not a report
def test_every_text_format_renders_the_verdict_and_every_variant(demo_result, fmt):
    _name, render = FORMATS[fmt]
    text = render(demo_result)
    assert text.strip()
    for v in demo_result.variants:
        assert (md_inline(v.name) if fmt == "md" else v.name) in text  # Markdown escapes names
    assert demo_result.verdict.value in text.lower()


def test_json_round_trips_and_validates_against_the_shipped_schema(demo_result):
    schema = json.loads(resources.files("audit.core").joinpath("results.schema.json").read_text())
    data = json.loads(FORMATS["json"][1](demo_result))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)
    assert AuditResult.from_dict(data, details_types()) == demo_result
    broken = dict(data, verdict="maybe")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_html_is_self_contained_and_lists_all_72_subcategories(demo_result):
    html = FORMATS["html"][1](demo_result)
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html), "external resource referenced"
    assert "@import" not in html and "url(" not in html
    assert html.count("<svg") >= 1 and "<polyline" in html
    assert "@media print" in html
    for _fn, _cat, sub in subcategories():
        assert f"<td>{sub['id']}</td>" in html
    assert demo_result.policy.sha256 in html
    assert len(html.encode()) < 2_000_000


def test_html_escapes_text_from_findings(demo_result):
    evil = "<script>alert(1)</script>"
    f0 = replace(demo_result.findings[0], summary=evil)
    html = FORMATS["html"][1](replace(demo_result, findings=(f0,) + demo_result.findings[1:]))
    assert evil not in html and "&lt;script&gt;" in html


def test_markdown_fits_a_pull_request_comment(demo_result):
    md = FORMATS["md"][1](demo_result)
    assert len(md) < 65_536
    assert "![" not in md and "http" not in md  # no images, nothing uploaded or linked
    assert md.count("\n| ") >= len(demo_result.findings)


def test_reviewer_block_is_filled_from_the_result(demo_result):
    html = FORMATS["html"][1](replace(demo_result, reviewer={"name": "A. Auditor", "role": "Security reviewer",
                                                             "date": "2026-11-22"}))
    assert "A. Auditor" in html and "Security reviewer" in html and "Residual risk" in html


def test_triage_csv_lists_every_flagged_row_with_each_detectors_score(demo_result, demo_run):
    import csv
    import io

    from reports.triage_csv import COLUMNS, render_triage
    rows = list(csv.DictReader(io.StringIO(render_triage(demo_result))))
    assert tuple(rows[0].keys()) == COLUMNS
    li = next(f for f in demo_result.findings if f.check == "label_issues")
    train_flagged = {int(r["row"]) for r in rows if r["split"] == "train" and r["label_issue"] == "True"}
    assert train_flagged == set(li.details.indices_ranked)
    for r in rows:
        if r["split"] == "train" and r["label_issue"] == "True":
            assert 0 <= float(r["label_quality"]) <= 1
    lk = next(f for f in demo_result.findings if f.check == "leakage")
    leaked = {int(r["row"]) for r in rows if r["split"] == "test" and r["leak_distance"]}
    assert leaked == {p.test_row for p in lk.details.flagged}
    bd = next(f for f in demo_result.findings if f.check == "backdoor")
    screened = {int(r["row"]): r for r in rows if r["split"] == "train" and r["backdoor_ratio_z"]}
    assert set(screened) == {p.row for p in bd.details.flagged} and screened
    assert all(float(r["backdoor_ratio_z"]) > 2.5 or float(r["backdoor_spectral_z"]) > 3.5
               or r["backdoor_clustered"] == "True" for r in screened.values())
    assert (demo_run[1] / "triage.csv").read_text(encoding="utf-8") == render_triage(demo_result)


def test_the_demo_report_says_why_what_it_means_and_what_to_do(demo_run, demo_result):
    """The banner's second line is the reason; "What this means" and "Recommended actions" follow, each action
    linked to a finding's row (or the evidence gaps) that exists in the report, and named in summary.md; the
    notebook view is the report's first screen with links to the files written."""
    from markupsafe import escape

    from audit.api.report import Audit
    from reports.actions import GAPS_ANCHOR, actions, reason_lead
    from reports.html import COLOURS
    out = demo_run[1]
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "summary.md").read_text(encoding="utf-8")
    why = reason_lead(demo_result)
    why = why[:1].upper() + why[1:]
    assert f'<span class="reason" id="reason">{escape(why)}' in html and f"**Why:** {md_inline(why, 1000)}" in md
    assert html.index('id="reason"') < html.index('<h2 id="meaning">What this means</h2>') < html.index(
        '<h2 id="actions">Recommended actions</h2>') < html.index('<h2 id="summary">')
    listed = html.split('<h2 id="actions">')[1].split("<h2")[0]
    todo = actions(demo_result)
    assert todo and listed.count("<li>") == len(todo)
    anchors = set(re.findall(r'\bid="([^"]+)"', html))
    links = re.findall(r'<a href="#([^"]+)">', listed)
    assert links and set(links) <= anchors
    assert all(a.causes for a in todo)
    for a in todo:
        assert all(md_inline(f"finding {label}") in md for label, href in a.causes if href != GAPS_ANCHOR)
    assert "**What this means:** " in md and "**Recommended actions:**" in md
    notebook = Audit(demo_result, out_dir=out)._repr_html_()
    assert COLOURS[demo_result.verdict.value] in notebook and "<svg" in notebook and "<script" not in notebook
    assert "report.html</a>" in notebook and "summary.md</a>" in notebook and escape(why) in notebook

"""report.html: one self-contained file (inline CSS and SVG, no JavaScript, no external requests, printable); and
the notebook view of a result (``Audit._repr_html_``): the report's first screen (verdict colour, reason, threat
model, what it means, the robustness curve, the gating findings, links to the written report files)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup

from audit.core.result import AuditResult
from reports.templating import environment, render
from reports.view import context, robustness_chart

COLOURS = {"go": "#1e7e34", "no-go": "#b02a37", "error": "#6f42c1", "incomplete": "#8a5a00"}
STATUS_COLOURS = {"pass": "#1e7e34", "warn": "#8a5a00", "fail": "#b02a37", "error": "#6f42c1"}
LINKED = ("report.html", "summary.md", "report.pdf", "results.json")   # the files a notebook view links to

NOTEBOOK = """<div class="advaudit" style="font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#222;max-width:780px">
<div style="background:{{ colour }};color:#fff;padding:10px 14px;border-radius:6px">
<div style="font-size:18px;font-weight:700">advaudit: {{ r.verdict.label }} for candidate \u201c{{ r.candidate }}\u201d\
{% if r.policy.purpose == "screening" %} (screening, not a sign-off){% endif %}</div>
<div style="font-weight:600;margin-top:3px">{{ lead[:1] | upper }}{{ lead[1:] }}{{ ":" if gaps_listed else "." }}</div>
{% if r.evidence_gaps %}{% if not gaps_listed %}<div style="font-size:13px">Also missing evidence:</div>{% endif %}
<ul style="margin:4px 0 0;padding-left:20px;font-size:13px">{% for g in r.evidence_gaps %}<li>{{ g }}</li>\
{% endfor %}</ul>{% endif %}</div>
<p style="margin:8px 0;color:#595959;font-size:12px">Threat model: {% if tm and tm.declared %}<b>{{ tm.name }}</b> \
({{ tm.norm }} eps {{ "%g" | format(tm.eps) }}, {{ tm.knowledge.split(":")[0] }}){% else %}<b>not declared</b>: the \
attack grid and thresholds are generic{% endif %} \u00b7 policy \u201c{{ r.policy.name }}\u201d \
v{{ r.policy.version }}</p>
<p style="margin:8px 0">{{ meaning | join(" ") }}</p>
{% if chart %}<div>{{ chart }}</div>{% endif %}
{% if links %}<p style="margin:8px 0">Full report: {% for name, href in links %}<a href="{{ href }}">{{ name }}</a>\
{% if not loop.last %} \u00b7 {% endif %}{% endfor %}</p>{% endif %}
<details><summary style="cursor:pointer">Gating findings ({{ gating | length }}{% for k, n in counts.items() if n %}\
, {{ n }} {{ k }}{% endfor %})</summary>
<table style="border-collapse:collapse;font-size:13px;margin:8px 0"><caption>Gating findings\
</caption><thead><tr>{% for h in ("Finding", "Status", "Summary") %}<th scope="col" \
style="border:1px solid #d5d5d5;padding:3px 6px;background:#f3f3f3;text-align:left">{{ h }}</th>{% endfor %}</tr>\
</thead><tbody>{% for f in gating %}<tr><td style="border:1px solid #d5d5d5;padding:3px 6px">{{ f.id }}</td>\
<td style="border:1px solid #d5d5d5;padding:3px 6px;font-weight:600;color:{{ status_colours.get(f.status.value, \
"#565e64") }}">{{ f.status.value }}</td><td style="border:1px solid #d5d5d5;padding:3px 6px">{{ f.summary }}</td></tr>\
{% endfor %}</tbody></table></details>
</div>"""


def render_html(result: AuditResult) -> str:
    ctx = context(result)
    ctx["chart"] = Markup(ctx["chart"])
    ctx["tradeoff"] = Markup(ctx["tradeoff"])
    ctx["reliability"] = Markup(ctx["reliability"])  # built by reports.svg, which escapes every text it embeds
    return render("report.html.j2", autoescape=True, **ctx)


def href(path: Path) -> str:
    """A link a notebook can follow: relative to the working directory (the notebook's) when the file is under
    it, else a file: URI; percent-encoded either way."""
    if not path.is_absolute():
        return quote(path.as_posix())
    try:
        return quote(path.relative_to(Path.cwd()).as_posix())
    except ValueError:
        return path.as_uri()


def notebook_links(out: Path | None) -> list[tuple[str, str]]:
    """(file name, href) of each report file written under ``out`` (none: no links)."""
    if out is None:
        return []
    return [(name, href(out / name)) for name in LINKED if (out / name).is_file()]


def render_notebook(result: AuditResult, out: Path | None = None) -> str:
    """The notebook view: the first screen of the report, inline CSS and SVG, every value escaped."""
    from reports.actions import meaning, reason_lead
    return environment(True).from_string(NOTEBOOK).render(
        r=result, colour=COLOURS.get(result.verdict.value, "#565e64"), lead=reason_lead(result),
        gaps_listed=result.verdict.value == "incomplete", tm=result.threat_model, meaning=meaning(result),
        chart=Markup(robustness_chart(result)), gating=[f for f in result.findings if f.gating],
        status_colours=STATUS_COLOURS, links=notebook_links(out), counts=_not_passed(result))


def _not_passed(result: AuditResult) -> dict[str, int]:
    counts = {"error": 0, "fail": 0, "warn": 0}
    for f in result.findings:
        if f.gating and f.status.value in counts:
            counts[f.status.value] += 1
    return counts

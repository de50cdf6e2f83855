"""report.html: one self-contained file (inline CSS and SVG, no JavaScript, no external requests, printable)."""
from __future__ import annotations

from markupsafe import Markup

from audit.core.result import AuditResult
from reports.templating import render
from reports.view import context


def render_html(result: AuditResult) -> str:
    ctx = context(result)
    ctx["chart"] = Markup(ctx["chart"])
    ctx["tradeoff"] = Markup(ctx["tradeoff"])
    ctx["reliability"] = Markup(ctx["reliability"])  # built by reports.svg, which escapes every text it embeds
    return render("report.html.j2", autoescape=True, **ctx)

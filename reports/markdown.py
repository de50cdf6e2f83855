"""summary.md: a pull-request-sized summary (well under GitHub's 65,536-character comment limit, no images)."""
from __future__ import annotations

from audit.core.result import AuditResult
from reports.templating import render
from reports.view import context

LIMIT = 65_536


def render_markdown(result: AuditResult) -> str:
    text = render("summary.md.j2", autoescape=False, **context(result))
    if len(text) > LIMIT:
        text = text[: LIMIT - 200] + "\n\n_(truncated: see report.html for the full findings)_\n"
    return text

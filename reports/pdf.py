"""report.pdf: the HTML report printed by headless Chromium with the report's own print stylesheet."""
from __future__ import annotations

from audit.core.result import AuditResult
from reports.browser import html_to_pdf
from reports.html import render_html


def render_pdf(result: AuditResult) -> bytes:
    return html_to_pdf(render_html(result))

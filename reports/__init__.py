"""Renderers: one AuditResult -> text or bytes. ``FORMATS`` is the only registry: format -> (file name, render).

``DEFAULT_FORMATS`` are written by every run (triage.csv: the flagged data rows with every detector's score);
"pdf" (headless Chromium) on request (``--format pdf``).
"""
from reports.html import render_html
from reports.json_format import render_json
from reports.markdown import render_markdown
from reports.pdf import render_pdf
from reports.triage_csv import render_triage

FORMATS = {
    "html": ("report.html", render_html),
    "json": ("results.json", render_json),
    "md": ("summary.md", render_markdown),
    "pdf": ("report.pdf", render_pdf),
    "csv": ("triage.csv", render_triage),
}
DEFAULT_FORMATS = ("html", "json", "md", "csv")

__all__ = ["DEFAULT_FORMATS", "FORMATS", "render_html", "render_json", "render_markdown", "render_pdf", "render_triage"]

"""Renderers: one AuditResult -> text. ``FORMATS`` is the only registry: format -> (file name, render function)."""
from reports.html import render_html
from reports.json_format import render_json
from reports.markdown import render_markdown

FORMATS = {
    "html": ("report.html", render_html),
    "json": ("results.json", render_json),
    "md": ("summary.md", render_markdown),
}

__all__ = ["FORMATS", "render_html", "render_json", "render_markdown"]

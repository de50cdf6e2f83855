"""The compare summary: Markdown for a pull-request comment (under GitHub's 65,536-character limit, no images)."""
from __future__ import annotations

from audit.engine.compare import Comparison
from reports.markdown import LIMIT
from reports.templating import render


def render_comparison(c: Comparison) -> str:
    text = render("compare.md.j2", autoescape=False, c=c)
    if len(text) > LIMIT:
        text = text[: LIMIT - 200] + "\n\n_(truncated: compare the full results.json files)_\n"
    return text

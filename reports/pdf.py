"""report.pdf: the HTML report printed by headless Chromium with the report's own print stylesheet.

The template's ``@media print`` and ``@page`` rules lay the pages out (breaks, "page X of Y"); this module adds the
one rule that depends on the result: the paper size (``[output] paper``, A4 when the result predates the setting)
and the running header and footer (candidate, verdict, run time, the SHA-256 of the results.json the json format
renders for this same result). Every value goes into a CSS string through ``css_string``.
"""
from __future__ import annotations

import dataclasses
import hashlib

from audit.config.sections import PAPERS
from audit.core.errors import UsageError
from audit.core.result import AuditResult
from reports.browser import html_to_pdf
from reports.html import render_html
from reports.json_format import render_json

PAGE_SIZE = {"a4": "A4", "letter": "letter"}
MAX_CANDIDATE = 60   # characters of the candidate's name in the running header
MAX_FIELD = 40       # characters of any other value taken from the result (the run time)
assert set(PAGE_SIZE) == set(PAPERS)


def css_string(text: str, limit: int) -> str:
    """``text`` for the inside of a double-quoted CSS string: every character but [A-Za-z0-9 ] as a six-digit hex
    escape (``\\HHHHHH `` with its terminating space), so no quote, backslash, newline or ``<`` can end the string,
    the rule or the style element; longer than ``limit`` characters: cut, with an ellipsis."""
    if len(text) > limit:
        text = text[:limit - 1] + "\u2026"
    return "".join(c if (c.isascii() and c.isalnum()) or c == " " else f"\\{ord(c):06X} " for c in text)


def paper(result: AuditResult) -> str:
    """The result's ``[output] paper``: "a4" when it predates the setting; anything else is refused."""
    output = result.config.get("output") if isinstance(result.config, dict) else None
    value = output.get("paper", "a4") if isinstance(output, dict) else "a4"
    if value not in PAPERS:
        raise UsageError(f"config.output.paper: {str(value)[:40]!r} is not a paper size; valid: {', '.join(PAPERS)}")
    return str(value)


def with_paper(result: AuditResult, size: str | None) -> AuditResult:
    """The result with its ``[output] paper`` set to ``size`` (``advaudit render --paper``); None: unchanged."""
    if size is None:
        return result
    if size not in PAPERS:
        raise UsageError(f"--paper: {size[:40]!r} is not a paper size; valid: {', '.join(PAPERS)}")
    output = result.config.get("output")
    output = {**(output if isinstance(output, dict) else {}), "paper": size}
    return dataclasses.replace(result, config={**result.config, "output": output})


def results_sha256(result: AuditResult) -> str:
    """SHA-256 of the results.json this result renders to (the bytes the json format writes)."""
    return hashlib.sha256(render_json(result).encode("utf-8")).hexdigest()


def page_rule(result: AuditResult) -> str:
    """The ``@page`` rule of this result: paper size, running header (candidate, verdict, run time) and footer
    (results.json SHA-256; the page number comes from the template)."""
    header = (f'"advaudit \\002014  candidate {css_string(result.candidate, MAX_CANDIDATE)} \\002014  '
              f'{css_string(result.verdict.label, MAX_FIELD)} \\002014  {css_string(result.created, MAX_FIELD)}"')
    footer = f'"results.json SHA-256 {css_string(results_sha256(result), 64)}"'
    return (f"@page {{ size: {PAGE_SIZE[paper(result)]}; @top-left {{ content: {header}; }} "
            f"@bottom-left {{ content: {footer}; }} }}")


def print_html(result: AuditResult) -> str:
    """The HTML report with this result's ``@page`` rule added at the end of its head (after the template's own
    print rules, so it wins); the screen report (report.html) stays as the html format renders it."""
    html = render_html(result)
    head = html.find("</head>")  # the template's own: every value before it is HTML-escaped, so none holds "</"
    if head < 0:
        raise RuntimeError("the report template has no </head>")
    return f'{html[:head]}<style id="page">{page_rule(result)}</style>\n{html[head:]}'


def render_pdf(result: AuditResult) -> bytes:
    return html_to_pdf(print_html(result))

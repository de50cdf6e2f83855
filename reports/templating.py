"""The jinja2 environment: templates ship inside the wheel (package ``templates``), autoescape on for HTML.

HTML (report.html, so the PDF): autoescape makes every value inert as markup, and ``finalize`` (``visible``) makes
it inert as text: each control or format character of a value (bidi embeddings, overrides, isolates and marks,
zero-width characters, C0/C1 controls other than tab and line breaks, line/paragraph separators, lone surrogates),
which could reorder or hide what a reader sees, becomes U+FFFD. It acts on every ``{{ value }}`` (Markup stays
Markup), never on the template's own text. Markdown escapes each value with the ``md`` filter instead.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from audit.core.text import md_inline

SHOWN = "\ufffd"
KEPT = frozenset("\t\n\r")


def _hidden(c: str) -> bool:
    return c not in KEPT and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def visible(value: object) -> object:
    """``value`` with every control or format character replaced by U+FFFD; a number or None as it is."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Markup) or hasattr(value, "__html__"):
        raw = str(value.__html__())
        return Markup("".join(SHOWN if _hidden(c) else c for c in raw))
    raw = str(value)
    return "".join(SHOWN if _hidden(c) else c for c in raw)


def _load(name: str) -> str:
    return resources.files("templates").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> jinja2.Environment:
    """The environment; filter ``md`` (``audit.core.text.md_inline``) escapes a value for Markdown, ``filename``
    keeps a path's last part; the HTML one finalizes every value with ``visible``."""
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_load), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=visible if autoescape else None)
    env.filters["md"] = md_inline
    env.filters["filename"] = lambda path: Path(str(path)).name
    return env


def render(name: str, autoescape: bool, **ctx) -> str:
    return environment(autoescape).get_template(name).render(**ctx)

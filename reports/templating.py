"""The jinja2 environment: templates ship inside the wheel (package ``templates``), autoescape on."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jinja2

from audit.core.text import md_inline


def _load(name: str) -> str:
    return resources.files("templates").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> jinja2.Environment:
    """The environment; filter ``md`` (``audit.core.text.md_inline``) escapes a value for Markdown."""
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_load), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = md_inline
    return env


def render(name: str, autoescape: bool, **ctx) -> str:
    return environment(autoescape).get_template(name).render(**ctx)

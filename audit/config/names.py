"""User-chosen names, checked once when the config loads.

Names that become paths, ids or headings (defences, deployments, the candidate, the MLflow experiment) are
identifiers: ``NAME_RULE``, letters, digits, ``.``, ``_`` and ``-``, 1 to 64 characters, starting with a letter or a
digit (so no ``..``, no ``/``, no hidden file). Display strings (class names, the threat model's name, the
reviewer) may hold any text up to ``DISPLAY_LIMIT`` characters: every format escapes them with its own rule
(HTML autoescape, ``audit.core.text.md_inline`` for Markdown, ``audit.core.text.terminal`` for the terminal).
"""
from __future__ import annotations

import re

from audit.core.errors import UsageError

NAME_RULE = "letters, digits, '.', '_' and '-', 1-64 characters, starting with a letter or a digit"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DISPLAY_LIMIT = 200
MAX_CLASSES = 100_000


def identifier(key: str, value: str) -> str:
    """``value`` if it is a valid name, else exit 2 naming ``key`` and the rule."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        shown = ascii(value[:80]) if isinstance(value, str) else type(value).__name__
        raise UsageError(f"{key}: {shown} is not a valid name ({NAME_RULE})")
    return value


def display(key: str, value: str, limit: int = DISPLAY_LIMIT) -> str:
    """A display string: any text, at most ``limit`` characters and no NUL."""
    if len(value) > limit or "\x00" in value:
        raise UsageError(f"{key}: at most {limit} characters without NUL ({len(value)} given)")
    return value

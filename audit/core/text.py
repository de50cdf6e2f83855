"""One escaping rule per output format for text a results.json (so, a hostile user) controls.

HTML: jinja autoescape (report.html). Markdown (summary.md, the compare PR comment): ``md_inline``. A terminal
(verify's file names, error messages): ``terminal``. Pure Python, no torch.
"""
from __future__ import annotations

import re
import unicodedata

LIMIT = 200
ZWSP = "\u200b"
# bidi embeddings/overrides/isolates and marks: they reorder or hide what a reader sees
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
MD_PUNCT = frozenset("\\`*_{}[]()#+-.!|~=^$")
# ZWSP points: "://" and "www." (bare-URL autolinks), "@" (mentions, e-mails), ":name:" (emoji shortcodes that
# could fake a status icon) and "#12" / "GH-12" (issue references)
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)|(?<=:)(?=[\w+-]+:)|(?<=#)(?=\w)|(?<=gh)(?=-\d)")


def _breaks(c: str) -> bool:
    """A line break, a control character, a bidi control or a lone surrogate: never printed as is."""
    return unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") or c in BIDI


def md_inline(value: object, limit: int = LIMIT) -> str:
    """``value`` as inert Markdown inline text (a table cell, a heading, a sentence): it renders as the literal
    text and can add no line, cell, heading, link, image, HTML, emphasis, code span, mention or autolink.

    The rule, in order: ``str()``; every line break, control character, bidi control and lone surrogate becomes
    a space, and outer whitespace goes; the text is cut to ``limit`` characters (then "…"); a zero-width space
    goes after every ``@`` (mentions, e-mail autolinks), inside ``://`` and after ``www`` (GitHub's bare-URL
    autolinks, which survive entity and backslash decoding), after the ``:`` opening an emoji shortcode and after
    the ``#`` of an issue reference; ``&``, ``<``, ``>`` become entities; each Markdown
    control character ``\\ ` * _ { } [ ] ( ) # + - . ! | ~ = ^ $`` is backslash-escaped (valid CommonMark for
    any ASCII punctuation).
    """
    text = "".join(" " if _breaks(c) else c for c in str(value)).strip()
    if len(text) > limit:
        text = text[:limit] + "…"
    text = _AUTOLINK.sub(ZWSP, text)
    return "".join(ENTITIES.get(c) or ("\\" + c if c in MD_PUNCT else c) for c in text)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def terminal(value: object) -> str:
    """``value`` safe to print on a terminal: every control character (ESC, so ANSI sequences, included), line
    or paragraph separator and bidi control is shown escaped (``\\x1b``, ``\\n``, ``\\u202e``), so it can neither
    move the cursor, clear the screen nor fake a line. Printable Unicode stays."""
    return "".join(_shown(c) if _breaks(c) else c for c in str(value))

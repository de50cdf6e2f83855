"""The ``[checks]`` part of the init template (audit/config/init_template.toml), generated from every check's
``Config``: ``python tools/write_schema.py`` writes it between the markers, and a test fails when the shipped file
differs. A field's comment is its ``metadata={"doc": ...}``; a table's is the first sentence of its Config's
docstring."""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from audit.checks.base import NoSettings

BEGIN = "# --- [checks]: generated from each check's Config by tools/write_schema.py; edit the Configs, not this ---"
END = "# --- end of [checks] ---"
COMMENT_AT = 27   # the template's comment column


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _line(text: str, comment: str) -> str:
    return f"{text:<{COMMENT_AT - 1}} # {comment}" if comment else text


def _default(f: dataclasses.Field) -> Any:
    """A settings field's default value (every ``Config`` field has a default or a default factory)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING, f.name
    return f.default_factory()


def check_tables() -> str:
    """``[checks]`` with ``enabled``, then one ``[checks.<id>]`` table of defaults per check that has settings."""
    from audit.checks import CHECKS  # the registry imports every module of the package, this one too
    lines = [BEGIN, _line("[checks]", "which checks run, and each check's settings"),
             _line("enabled = []", "empty = every check on by default; e.g. [\"clean_accuracy\", \"robustness\"]")]
    for check in CHECKS.values():
        if check.Config is NoSettings:
            continue
        doc = re.split(r"\.\s|:\s|\.$", " ".join((check.Config.__doc__ or "").split()))[0].replace("``", "")
        lines += ["", _line(f"[checks.{check.id}]", doc)]
        for f in dataclasses.fields(check.Config):
            lines.append(_line(f"{f.name} = {toml_value(_default(f))}", f.metadata.get("doc", "")))
    return "\n".join(lines + [END])


def with_check_tables(template: str) -> str:
    """``template`` with its generated block replaced by the current one."""
    head, sep, rest = template.partition(BEGIN)
    _old, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError("the init template has no generated [checks] block (its markers are missing)")
    return head + check_tables() + tail

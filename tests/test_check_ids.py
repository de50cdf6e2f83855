"""No check id is written as a string outside its own file, its template partial and its tests: every other part
reaches a check through the registry (``CHECKS``) or its class (``Robustness.id``), so adding, renaming or removing
a check touches its own files only. Policies (audit/config/policies/*.toml) may name ids: they are data."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from audit.checks import CHECKS

ROOT = Path(__file__).resolve().parent.parent
WALKED = ("audit", "attacks", "reports", "templates")


def own_files(check_id: str) -> set[Path]:
    return {ROOT / "audit" / "checks" / f"{check_id}.py", ROOT / "templates" / "checks" / f"{check_id}.html.j2"}


def python_strings(path: Path) -> list[tuple[int, str]]:
    return [(n.lineno, n.value) for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def template_strings(path: Path) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        out += [(i, m.group(2)) for m in re.finditer(r"([\"'])([A-Za-z0-9_]+)\1", line)]
    return out


def quoted_ids() -> list[str]:
    found = []
    for top in WALKED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".j2") or ".venv" in path.parts:
                continue
            strings = python_strings(path) if path.suffix == ".py" else template_strings(path)
            found += [f"{path.relative_to(ROOT)}:{line}: {text!r}" for line, text in strings
                      if text in CHECKS and path not in own_files(text)]
    return found


def test_no_check_id_is_quoted_outside_its_own_files():
    assert quoted_ids() == []


def test_the_walk_sees_a_quoted_id(tmp_path):
    """The scanner itself: a quoted id in a template or in Python is found (it would not pass vacuously)."""
    some = next(iter(CHECKS))
    (tmp_path / "x.j2").write_text(f'{{% if f.check == "{some}" %}}', encoding="utf-8")
    (tmp_path / "x.py").write_text(f"CHECK = {some!r}\n", encoding="utf-8")
    assert template_strings(tmp_path / "x.j2") == [(1, some)]
    assert (1, some) in python_strings(tmp_path / "x.py")

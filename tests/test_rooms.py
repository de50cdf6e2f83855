"""The architecture as a test: every module has one room, lower rooms never import upper ones (nor a sibling room
of the same level), there is no import cycle, ``audit.core`` imports no torch, no module grows past 300 lines,
and ``audit/`` holds no loose modules."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("audit", "attacks", "reports")
# room -> level; a module may import its own room or any room of a strictly lower level
LEVELS = {"audit.core": 0, "audit.config": 1, "audit.data": 2, "audit.frameworks": 2, "audit.models": 3,
          "audit.methods": 4, "audit.checks": 5, "audit.engine": 6, "audit.evidence": 7, "reports": 7,
          "audit.api": 8, "audit.cli": 9, "audit.__main__": 10, "audit": 10}
LIBRARY = "attacks"  # the perturbation library: importable from every room of audit, imports none of them


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def room(module: str) -> str:
    for r in sorted(LEVELS, key=len, reverse=True):
        if module == r or module.startswith(r + "."):
            return r
    return module.split(".")[0]


def imports(path: Path, known: dict) -> set[str]:
    """Every module of ours this file imports, at any depth of the file (function bodies included):
    ``from a.b import c`` counts as a.b.c when that is a module, else as a.b."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in PACKAGES}
    return out


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def resolve(name: str, known: dict) -> str | None:
    """The module an imported name refers to (``from audit.core import result`` -> audit.core.result)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: {r for n in imports(p, known) if (r := resolve(n, known)) and r != m} for m, p in known.items()}


def test_lower_rooms_never_import_upper_or_sibling_rooms():
    bad = []
    for m, deps in graph().items():
        src = room(m)
        for d in deps:
            dst = room(d)
            if src == dst:
                continue
            if src == LIBRARY:
                bad.append(f"{m} -> {d} (the attacks library imports no room of audit)")
            elif dst == LIBRARY:
                continue
            elif LEVELS[dst] >= LEVELS[src]:
                bad.append(f"{m} ({src}) -> {d} ({dst})")
    assert not bad, "\n".join(sorted(bad))


def test_there_is_no_import_cycle():
    g = graph()
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in g.get(m, ()):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2
    for m in g:
        if m not in state:
            visit(m)
    assert not cycles, cycles[0]


def test_the_rule_catches_a_violation_and_a_cycle(tmp_path, monkeypatch):
    """The walker itself: an upward import and a two-module cycle in a throwaway tree are found."""
    (tmp_path / "audit" / "core").mkdir(parents=True)
    (tmp_path / "audit" / "engine").mkdir(parents=True)
    for d in ("audit", "audit/core", "audit/engine"):
        (tmp_path / d / "__init__.py").write_text("")
    (tmp_path / "audit" / "core" / "a.py").write_text("from audit.engine import b\n")
    (tmp_path / "audit" / "engine" / "b.py").write_text("def f():\n    from audit.core import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="audit.core.a"):
        test_lower_rooms_never_import_upper_or_sibling_rooms()
    with pytest.raises(AssertionError):
        test_there_is_no_import_cycle()


def test_core_and_reading_a_result_import_no_torch(demo_run):
    _code, out, _ = demo_run
    code = ("import json, sys\nfrom audit.core.result import AuditResult\n"
            "import audit.core.result_schema, audit.core.stats\n"
            f"r = AuditResult.from_dict(json.load(open({str(out / 'results.json')!r})))\n"
            "assert r.verdict.value in ('go', 'no-go', 'error')\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'art', 'cleanlab', 'attacks'))\n"
            "print(bad)\nassert not bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_modules_are_small_and_audit_has_no_loose_modules():
    big = {m: n for m, p in modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300}
    assert not big, big
    loose = sorted(p.name for p in (ROOT / "audit").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"], loose

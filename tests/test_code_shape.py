"""The shape of the code as a test, beside the room test: in audit/ and attacks/ no function is longer than 60
lines (from its ``def`` to its last line, decorators excluded) and none takes more than 8 parameters (every
parameter counts, ``*args`` and ``**kwargs`` included, ``self``/``cls`` excluded); attacks take no ``**kwargs``
they never read (a typo in a setting must fail, not vanish); and the engine's ``Context`` keeps under 12 public
methods."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 60
MAX_PARAMS = 8


def functions():
    for pkg in ("audit", "attacks"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield path.relative_to(ROOT), node


def parameter_count(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    n = len(names) + (a.vararg is not None) + (a.kwarg is not None)
    return n - 1 if names and names[0] in ("self", "cls") else n


def test_the_shape_rules_see_what_they_should():
    tree = ast.parse("def f(self, a, b, *c, d, **e):\n    pass\n\n\ndef g(a):\n" + "    a += 1\n" * 70)
    f, g = (n for n in tree.body if isinstance(n, ast.FunctionDef))
    assert parameter_count(f) == 5
    assert g.end_lineno - g.lineno + 1 == 71
    h, k = ast.parse("def h(x, **_unused):\n    return x\n\n\ndef k(**kw):\n    return dict(kw)\n").body
    assert unread_kwargs(h) and not unread_kwargs(k)


def test_no_function_is_longer_than_60_lines():
    long = [f"{p}:{fn.lineno} {fn.name} ({fn.end_lineno - fn.lineno + 1} lines)" for p, fn in functions()
            if fn.end_lineno - fn.lineno + 1 > MAX_LINES]
    assert not long, "split these functions:\n" + "\n".join(long)


def test_no_function_takes_more_than_8_parameters():
    wide = [f"{p}:{fn.lineno} {fn.name} ({parameter_count(fn)} parameters)" for p, fn in functions()
            if parameter_count(fn) > MAX_PARAMS]
    assert not wide, "group these parameters (a frozen dataclass):\n" + "\n".join(wide)


def unread_kwargs(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``**kwargs`` the body never reads: whatever is passed in it vanishes."""
    if fn.args.kwarg is None:
        return False
    name = fn.args.kwarg.arg
    return not any(isinstance(n, ast.Name) and n.id == name for stmt in fn.body for n in ast.walk(stmt))


def test_attacks_swallow_no_unknown_settings():
    swallowing = [f"{p}:{fn.lineno} {fn.name}(**{fn.args.kwarg.arg})" for p, fn in functions()
                  if str(p).startswith("attacks") and unread_kwargs(fn)]
    assert not swallowing, "an attack must reject a setting it does not know:\n" + "\n".join(swallowing)


@pytest.mark.parametrize("module, cls, most", [("audit/engine/context.py", "Context", 11)])
def test_the_context_stays_small(module, cls, most):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    public = [n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
              and not n.name.startswith("_")
              and not any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)]
    assert len(public) <= most, f"{cls} has {len(public)} public methods: {public}"

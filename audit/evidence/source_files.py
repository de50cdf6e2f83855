"""Which file holds the model's (or a data factory's) code, for the provenance block: the file that defines the
factory function or the in-memory model's class, looked up without importing or running anything; and whether it
is installed code (the standard library, site-packages, advaudit itself), which is neither the user's source to
bundle nor a repository whose git state describes the user's work.
"""
from __future__ import annotations

import inspect
import sys
import sysconfig
from pathlib import Path

OWN = Path(__file__).resolve().parents[1]   # advaudit's own package: its modules are not the user's source


def _py_file(where: str | None) -> Path | None:
    return Path(where) if where and where.endswith(".py") and Path(where).is_file() else None


def module_file(module_name: str) -> Path | None:
    """The .py source file of a module the run imported (nothing is imported here: that would run code)."""
    return _py_file(getattr(sys.modules.get(module_name), "__file__", None))


def defining_file(obj) -> Path | None:
    """The .py file that defines ``obj`` (a function, a class): ``inspect.getsourcefile``, through decorators."""
    try:
        return _py_file(inspect.getsourcefile(inspect.unwrap(getattr(obj, "__func__", obj))))
    except (TypeError, ValueError, OSError):
        return None


def factory_source(spec: str) -> Path | None:
    """The file defining the ``module:function`` the run imported (``mypkg:build`` re-exported by
    mypkg/__init__.py from mypkg/net.py: net.py), else its module's file. Looked up statically: nothing runs."""
    module_name, _, attr = spec.partition(":")
    obj = sys.modules.get(module_name)
    try:
        for part in attr.split(".") if obj is not None and attr else ():
            obj = inspect.getattr_static(obj, part)
    except AttributeError:
        obj = None
    return (defining_file(obj) if obj is not None else None) or module_file(module_name)


def third_party(path: Path) -> bool:
    """Whether ``path`` is installed code (the standard library, site-packages, advaudit itself), not the user's."""
    p = path.resolve()
    roots = {sysconfig.get_paths().get(k) for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return p.is_relative_to(OWN) or any(r and p.is_relative_to(Path(r).resolve()) for r in roots)

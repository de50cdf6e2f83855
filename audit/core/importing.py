"""Import the user's ``package.module:function`` callables, with the config file's directory importable."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from audit.core.errors import UsageError


def import_callable(spec: str, key: str, base_dir: Path | None = None):
    """The callable named by ``spec``; ``base_dir`` (the config's directory) is put on ``sys.path`` first."""
    module_name, sep, func = spec.partition(":")
    if not sep or not module_name or not func:
        raise UsageError(f"{key}: {spec!r} must have the form 'package.module:function'")
    if base_dir is not None:
        if str(base_dir) not in sys.path:
            sys.path.insert(0, str(base_dir))
        _forget_shadowed(module_name.split(".")[0], Path(base_dir))
    try:
        obj = importlib.import_module(module_name)
        for part in func.split("."):
            obj = getattr(obj, part)
    except ImportError as e:
        raise UsageError(f"{key}: cannot import module {module_name!r} ({e})") from None
    except AttributeError:
        raise UsageError(f"{key}: module {module_name!r} has no attribute {func!r}") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        raise UsageError(f"{key}: importing {module_name!r} raised {type(e).__name__}: {e}") from None
    if not callable(obj):
        raise UsageError(f"{key}: {spec!r} is not callable")
    return obj


def _forget_shadowed(top: str, base_dir: Path) -> None:
    """Two configs in different folders may both name ``model:build``: a module of that name cached from another
    folder must not stand in for the one next to this config."""
    local = base_dir / f"{top}.py"
    if not (local.is_file() or (base_dir / top / "__init__.py").is_file()):
        return
    cached = sys.modules.get(top)
    where = getattr(cached, "__file__", None)
    if cached is not None and (where is None or Path(where).resolve().parent != base_dir.resolve()
                               and Path(where).resolve().parent.parent != base_dir.resolve()):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]

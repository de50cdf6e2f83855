"""The Python API: ``audit.run(config=..., model=..., data=...)`` audits an in-memory model and arrays (or a config
file) in one call and returns an :class:`Audit` (verdict, tables as pandas DataFrames, HTML for notebooks).

    import audit
    result = audit.run(model=my_model, data=dict(x_train=..., y_train=..., x_test=..., y_test=...),
                       config={"threat_model": {"eps": 8 / 255}, "attacks": {"preset": "quick"}})
    result.verdict, result.findings_table(), result.robustness_table()
    result.write("audit-out")        # the same output directory and evidence bundle as the CLI

Errors in the inputs raise ``audit.UsageError`` with the one-line message the CLI prints. Every argument is checked
(its type, and what can be checked without work: the config, the factory's import, the output directory, the
arrays) before anything is loaded into the pipeline or trained.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audit.api.report import Audit
from audit.core.errors import UsageError

ARGUMENTS = ("config", "model", "data", "factory", "out", "base_dir", "mlflow", "sign")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL_ARRAYS = ("x_val", "y_val")


def _type(value: Any) -> str:
    return type(value).__name__


def _path(value: Any, name: str, what: str) -> Path | None:
    """``value`` as a Path (None stays None); anything but a str or a path is refused naming ``name``."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"{name}: give {what} as a str or a pathlib.Path, not {_type(value)}")
    path = Path(value)
    if "\0" in str(path):
        raise UsageError(f"{name}: the path contains a NUL byte")
    return path


def _config_fields() -> tuple[str, ...]:
    from audit.config import AuditConfig
    return tuple(sorted(f.name for f in dataclasses.fields(AuditConfig)  # data, model: arguments of their own
                        if f.init and f.name != "base_dir" and f.name not in ARGUMENTS))


def _plain(value: Any) -> Any:
    """Config data from Python: dataclasses as tables, numpy scalars and arrays as Python numbers and lists (as
    TOML would give them). Only called on data whose nesting was checked, so the recursion is bounded."""
    import numpy as np

    from audit.core.serde import to_data
    value = to_data(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _check_changes(changes: dict) -> dict:
    """The top-level config fields to replace, as plain data (a section may be given as data or its dataclass)."""
    from audit.config.load import check_nesting
    fields = _config_fields()
    for key in changes:
        if key not in fields:
            raise UsageError(f"{key}: not an argument of audit.run nor a top-level config field; valid: "
                             f"{', '.join(ARGUMENTS)}, or a config field: {', '.join(fields)}")
    check_nesting(changes)
    return _plain(changes)


def _config(config: Any, base_dir: Path | None, changes: dict):
    """The resolved, fully checked config; ``changes`` are merged into its data and loaded with it (the same
    strict conversion as the TOML file's keys)."""
    from audit.config import AuditConfig
    from audit.config.load import check_nesting, read_toml
    from audit.core.serde import to_data
    from audit.engine import configure
    here = base_dir or Path.cwd()
    if config is None:
        data, where = {}, here
    elif isinstance(config, AuditConfig):
        check_nesting(config)
        data = to_data(config)  # loaded again like a file: every section's checks run, names and bounds included
        data.pop("base_dir", None)  # set by the loader, never a key; the paths in the data are already absolute
        where = Path(config.base_dir) if config.base_dir else here
    elif isinstance(config, (str, os.PathLike)):
        path = _path(config, "config", "the TOML file")
        assert path is not None   # _path keeps only None as None
        data, where = read_toml(path), path.resolve().parent
    elif isinstance(config, Mapping):
        check_nesting(dict(config))
        data, where = _plain(dict(config)), here
    else:
        raise UsageError(f"config: give a TOML path, a dict shaped like the TOML, or an AuditConfig, not "
                         f"{_type(config)}")
    return configure.from_mapping({**data, **changes}, where)


def _model(model: Any):
    import torch
    if model is None or isinstance(model, torch.nn.Module):
        return model
    if isinstance(model, type):
        raise UsageError(f"model: give a torch.nn.Module instance (already trained), not the class {model.__name__}")
    why = " (a function is not auditable: it has no eval mode and no parameters)" if callable(model) else ""
    raise UsageError(f"model: give a torch.nn.Module (already trained), not {_type(model)}{why}")


def _array(value: Any, key: str):
    """One array of ``data`` as a numpy array (a torch tensor is detached and moved to the CPU first)."""
    import numpy as np
    import torch
    where = f"data[{key!r}]"
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise UsageError(f"{where}: a {value.layout} tensor; pass a dense one (tensor.to_dense())")
        value = value.detach().cpu()
        if value.is_floating_point() and value.dtype not in (torch.float16, torch.float32, torch.float64):
            value = value.float()  # bfloat16 and friends have no numpy dtype
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):  # pandas, array-API objects
        try:
            return np.asarray(value)
        except Exception as e:  # noqa: BLE001 - the caller's object failed to convert
            raise UsageError(f"{where}: cannot convert {_type(value)} to an array ({type(e).__name__})") from None
    raise UsageError(f"{where}: give a numpy array or a torch tensor, not {_type(value)}")


def _data(data: Any, cfg) -> tuple[Any, tuple]:
    """``data`` as (Splits, the arrays' digests for the provenance block): a Splits object (no digests), or a
    mapping of arrays checked like a data file's."""
    from audit.data.sources import from_arrays
    from audit.data.splits import Splits
    from audit.engine.assemble import IN_MEMORY_DATA
    from audit.evidence.provenance import array_digests
    if data is None or isinstance(data, Splits):
        return data, ()
    if not isinstance(data, Mapping):
        raise UsageError(f"data: give a dict of arrays ({', '.join(ARRAYS)}; optionally {', '.join(OPTIONAL_ARRAYS)})"
                         f" or a Splits object, not {_type(data)}")
    valid = ARRAYS + OPTIONAL_ARRAYS
    for key in data:
        if key not in valid:
            raise UsageError(f"data: unknown key {ascii(key)[:80]}; valid keys: {', '.join(valid)}")
    arrays = {k: v for k, v in data.items() if v is not None}
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise UsageError(f"data: the arrays lack {', '.join(missing)}")
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise UsageError("data: give x_val and y_val together, or neither")
    given = {k: _array(v, k) for k, v in arrays.items()}
    return from_arrays(given, cfg.data, cfg.input, name=IN_MEMORY_DATA), array_digests(given)


def _mlflow(mlflow: Any) -> bool | str:
    if mlflow is None:
        return False
    if not isinstance(mlflow, (bool, str)):
        raise UsageError(f"mlflow: give True, False or a tracking URI (a str), not {_type(mlflow)}")
    return mlflow


def _check_uri(uri: str, named_by_argument: bool) -> None:
    """The tracking URI's pre-flight (MLflow installed, the store writable or the server reachable); a URI given
    as ``mlflow=`` is named as that argument."""
    from audit.api.tracking_check import check_tracking_uri
    try:
        check_tracking_uri(uri)
    except UsageError as e:
        key = "tracking.tracking_uri:"
        if not (named_by_argument and str(e).startswith(key)):
            raise
        raise UsageError(f"mlflow:{str(e)[len(key):]}") from None


def _factory(factory: Any, base_dir: str) -> str | None:
    """``factory`` imported now (as the pipeline will) so a bad one fails before any work."""
    from audit.core.importing import import_callable
    if factory is None:
        return None
    if not isinstance(factory, str):
        raise UsageError(f"factory: give 'package.module:function' (a str), not {_type(factory)}")
    import_callable(factory, "factory", Path(base_dir) if base_dir else None)
    return factory


def _sign(sign: Any, out: Path | None, cfg):
    """``cfg`` with ``sign`` as its output's signing key (checked with the output, before any work)."""
    key = _path(sign, "sign", "the Ed25519 private key (PEM)")
    if key is None:
        return cfg
    if out is None:
        raise UsageError("sign: signing needs an output directory to sign; give out= as well")
    return dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, sign_key=str(key)))


def run(config: Any = None, *, model=None, data=None, factory: str | None = None, out: str | Path | None = None,
        base_dir: str | Path | None = None, mlflow: bool | str = False, **changes) -> Audit:
    """Audit ``model`` (an ``nn.Module``, already trained; else the config's factory is trained) on ``data`` (a dict
    of arrays x_train, y_train, x_test, y_test [, x_val, y_val], numpy or torch; else the config's source).

    config: a TOML path, a dict shaped like the TOML, or an AuditConfig (default: the defaults). factory:
    "module:function" that rebuilds ``model``'s architecture, so K-fold label issues and defences can train it
    (without one they fall back to what needs no retraining). changes: top-level config fields to replace
    (``seed=1``, ``candidate="baseline"``), checked like the TOML's keys. out: also write the output directory there
    (as ``advaudit run`` does). mlflow: True (the config's tracking URI, else sqlite:///mlflow.db in the working
    directory) or a tracking URI: log the run to MLflow. sign: an Ed25519 private key (PEM) to sign the output
    with (as ``[output] sign_key``; needs ``out``; a keyword argument, ``sign=KEY``). Every bad argument raises
    ``audit.UsageError`` before any work.
    """
    from audit.api.outputs import output_target, run_to
    from audit.models.loading import LoadedModel
    # each argument's type first, then what needs reading or importing; the pipeline only when all is right
    base = _path(base_dir, "base_dir", "the folder for the config's relative paths")
    if base is not None and not base.is_dir():
        raise UsageError(f"base_dir: not a directory: {base}")
    out_path = _path(out, "out", "the output directory")
    mlflow = _mlflow(mlflow)
    sign = changes.pop("sign", None)   # an argument (ARGUMENTS), taken from the keywords: run() keeps 8 parameters
    model = _model(model)
    changes = _check_changes(changes)
    cfg = _config(config, base, changes)
    factory = _factory(factory, cfg.base_dir)
    if factory:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, factory=factory))
    cfg = _sign(sign, out_path, cfg)
    cfg.validate("config")
    from audit.engine.evidence import check_policy
    check_policy(cfg.policy)  # the policy loads and its [evidence] names known checks
    uri_argument = isinstance(mlflow, str) and bool(mlflow)
    uri = str(mlflow) if uri_argument else cfg.tracking.tracking_uri
    logged = bool(mlflow or cfg.tracking.mlflow)
    # the config's formats and key, as the CLI: checked before any work
    config_path = Path(config).resolve() if isinstance(config, (str, os.PathLike)) else None
    target = output_target(out_path, cfg.output, config_path,
                           tracking=(uri, cfg.tracking.experiment) if logged else None)
    if logged:
        _check_uri(uri, named_by_argument=uri_argument)
    splits, digests = _data(data, cfg)
    loaded = None
    if model is not None:
        cls = type(model)
        loaded = LoadedModel(model, True, f"an in-memory {cls.__module__}.{cls.__qualname__}",
                             was_training=bool(getattr(model, "training", False)), trainable=bool(factory))
    from audit.engine.execution.threads import kept_threads
    with kept_threads():  # the run sets torch's threads ([execution] threads); the caller gets theirs back
        outcome = run_to(target, cfg, splits, model=loaded, arrays=digests)
    audit = Audit(outcome.result, out_dir=target.out if outcome.written else None)
    audit.mlflow_run_id = outcome.mlflow_run
    if outcome.mlflow_problem:  # logged after the audit: a store that fails now is a warning, the result stands
        import warnings
        warnings.warn(outcome.mlflow_problem, RuntimeWarning, stacklevel=2)
    return audit

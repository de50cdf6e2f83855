"""The Python API: ``audit.run(config=..., model=..., data=...)`` audits an in-memory model and arrays (or a config
file) in one call and returns an :class:`Audit` (verdict, tables as pandas DataFrames, HTML for notebooks).

    import audit
    result = audit.run(model=my_model, data=dict(x_train=..., y_train=..., x_test=..., y_test=...),
                       config={"threat_model": {"eps": 8 / 255}, "attacks": {"preset": "quick"}})
    result.verdict, result.findings_table(), result.robustness_table()
    result.write("audit-out")        # the same output directory and evidence bundle as the CLI

Errors in the inputs raise ``audit.UsageError`` with the one-line message the CLI prints.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from audit.api.report import Audit


def _config(config, base_dir: Path | None):
    from audit.config import AuditConfig
    from audit.engine import configure
    if config is None:
        return configure.from_mapping({}, base_dir)
    if isinstance(config, AuditConfig):
        return config
    if isinstance(config, (str, Path)):
        return configure.load(Path(config))
    if isinstance(config, dict):
        return configure.from_mapping(config, base_dir)
    raise TypeError(f"config: give a path, a dict or an AuditConfig, not {type(config).__name__}")


def run(config: Any = None, *, model=None, data=None, factory: str | None = None, out: str | Path | None = None,
        base_dir: str | Path | None = None, mlflow: bool | str = False, **changes) -> Audit:
    """Audit ``model`` (an ``nn.Module``, already trained; else the config's factory is trained) on ``data`` (a dict
    of arrays x_train, y_train, x_test, y_test [, x_val, y_val], numpy or torch; else the config's source).

    config: a TOML path, a dict shaped like the TOML, or an AuditConfig (default: the defaults). factory:
    "module:function" that rebuilds ``model``'s architecture, so K-fold label issues and defences can train it
    (without one they fall back to what needs no retraining). changes: top-level config fields to replace
    (``seed=1``, ``candidate="baseline"``). out: also write the output directory there (as ``advaudit run`` does).
    mlflow: True (the config's tracking URI, else ./mlruns) or a tracking URI: log the run to MLflow.
    """
    from audit.data.sources import from_arrays
    from audit.engine.pipeline import run_audit_with_context
    from audit.models.loading import LoadedModel
    base = Path(base_dir) if base_dir else None
    cfg = _config(config, base)
    if factory:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, factory=factory))
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    cfg.validate("config")
    splits = None
    if data is not None:
        splits = data if hasattr(data, "x_train") and hasattr(data, "num_classes") else \
            from_arrays(dict(data), cfg.data, cfg.input)
    loaded = None
    if model is not None:
        loaded = LoadedModel(model, True, f"an in-memory {type(model).__name__}",
                             was_training=bool(getattr(model, "training", False)), trainable=bool(factory))
    result, ctx = run_audit_with_context(cfg, splits, model=loaded)
    audit = Audit(result)
    if out is not None:
        audit.write(out, _ctx=ctx)
    if mlflow or cfg.tracking.mlflow:
        from audit.api.mlflow_log import log_run
        uri = mlflow if isinstance(mlflow, str) else cfg.tracking.tracking_uri
        audit.mlflow_run_id = log_run(result, Path(out) if out is not None else None, uri, cfg.tracking.experiment)
    return audit

"""The engine's config loader: the config room's strict loading, plus the names that only the registries above
it know (checks, data sources), all checked before anything is loaded or trained. The CLI and the Python API load
configs through here."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from audit.checks import CHECKS
from audit.config import AuditConfig, config_from_data, load_config
from audit.core.errors import UsageError
from audit.data.sources import NEEDS_PATH, SOURCES


def check_names(config: AuditConfig) -> AuditConfig:
    for c in config.checks:
        if c not in CHECKS:
            raise UsageError(f"checks: {c!r} is not a known check; valid: {', '.join(CHECKS)}")
    d = config.data
    if d.source not in SOURCES:
        raise UsageError(f"data.source: {d.source!r} is not a known source; valid: {', '.join(SOURCES)}")
    if d.source in NEEDS_PATH and not d.path:
        raise UsageError(f"data.path: source {d.source!r} needs a path")
    return config


def load(path: Path, overrides: Sequence[str] = ()) -> AuditConfig:
    """The config file at ``path`` (with ``--set`` overrides), fully checked."""
    return check_names(load_config(path, overrides))


def from_mapping(data: dict, base_dir: Path | None = None) -> AuditConfig:
    """A config from a dict (the Python API), paths relative to ``base_dir`` (default: the working directory)."""
    return check_names(config_from_data(data, base_dir or Path.cwd()))

"""Reading a config: TOML file (or a dict) -> ``--set`` overrides -> strict dataclasses -> absolute paths."""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomllib

from audit.config.audit_config import AuditConfig, check_sections
from audit.config.paths import resolve_paths
from audit.core.errors import UsageError
from audit.core.files import read_bounded
from audit.core.serde import from_data


def parse_override(text: str) -> tuple[list[str], Any]:
    """"attacks.eps=[0.1, 0.2]" -> (["attacks", "eps"], [0.1, 0.2]); a value that is not TOML is a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--set {text!r}: use KEY=VALUE, e.g. --set attacks.eps=[0.05,0.1]")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise UsageError(f"--set {key.strip()}: the value is nested too deeply") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {text!r}: {k!r} is not a table")
        node[keys[-1]] = value
    return data


MAX_CONFIG_BYTES = 1 << 20  # a config of a megabyte is already an attack, not a config


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(read_bounded(Path(path), MAX_CONFIG_BYTES, "config").decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as e:  # before ValueError, its base class
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise UsageError(f"cannot read config file {path}: {e}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise UsageError(f"config file {path}: nested deeper than Python can parse (the limit is "
                         f"{MAX_CONFIG_DEPTH} levels)") from None


MAX_CONFIG_DEPTH = 32  # levels of tables and lists; a real config needs a handful


def _children(node: Any) -> list[tuple[Any, Any]] | None:
    """(key, value) of a table, list or dataclass instance; None for a leaf."""
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, (list, tuple)):
        return list(enumerate(node))
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [(f.name, getattr(node, f.name)) for f in dataclasses.fields(node)]
    return None


def _key_path(keys: tuple) -> str:
    return ".".join(map(str, keys)).encode("unicode_escape").decode("ascii")[:120]


def check_nesting(data: Any, where: str = "config", limit: int = MAX_CONFIG_DEPTH) -> None:
    """Refuse data nested more than ``limit`` levels deep (and table keys that are not strings) before any
    recursive code (``copy.deepcopy``, the strict conversion, JSON) sees it. Iterative, so the input's depth cannot
    exhaust the stack here; a cycle is refused as too deep. Dataclass instances count as tables."""
    stack: list[tuple[Any, int, tuple]] = [(data, 1, ())]
    while stack:
        node, depth, keys = stack.pop()
        items = _children(node)
        if items is None:
            continue
        if depth > limit:
            raise UsageError(f"{where}: nested more than {limit} levels deep (at {_key_path(keys)}...); "
                             f"the limit is {limit} levels of tables and lists")
        for key, value in items:
            if isinstance(node, dict) and not isinstance(key, str):
                inside = f" in {_key_path(keys)}" if keys else ""
                raise UsageError(f"{where}: key {ascii(key)[:80]}{inside} is not a string (config keys are TOML "
                                 f"keys)")
            if isinstance(value, (dict, list, tuple)) or dataclasses.is_dataclass(value):
                stack.append((value, depth + 1, keys + (key,)))


def _checks_table(data: dict) -> dict:
    """``data`` with its checks in the ``[checks]`` table form: the older top-level list ``checks = [...]`` becomes
    ``enabled`` and each older top-level ``[<id>]`` settings table becomes ``[checks.<id>]``."""
    table = data.get("checks", {})
    table = {"enabled": table} if isinstance(table, (list, tuple)) else table
    if not isinstance(table, dict):
        raise UsageError(f"checks: expected a table (enabled = [...] and [checks.<id>] settings) or a list of check "
                         f"ids, got {type(table).__name__}")
    table = dict(table)
    for name in check_sections():
        if name in data:
            if name in table:
                raise UsageError(f"checks.{name}: given twice, as [checks.{name}] and as [{name}]; keep one")
            table[name] = data.pop(name)
    data["checks"] = table
    return data


def _loaded_form(data: dict) -> dict:
    """The ``[checks]`` table -> the config's fields: ``enabled`` -> ``checks``, ``[checks.<id>]`` -> ``<id>``."""
    table = dict(data.pop("checks"))
    valid = ("enabled",) + check_sections()
    for key in table:
        if key not in valid:
            raise UsageError(f"checks.{key}: unknown key; valid keys: {', '.join(valid)} (a check without settings "
                             f"has no table)")
    data.update({k: v for k, v in table.items() if k != "enabled"})
    if "enabled" in table:
        data["checks"] = table["enabled"]
    return data


def _override_key(text: str) -> str:
    """An override in the older form, ``label_issues.folds=3`` or ``checks=[...]``, as the ``[checks]`` table's."""
    key, sep, value = text.partition("=")
    head = key.strip().split(".")[0]
    if head in check_sections():
        return f"checks.{key.strip()}{sep}{value}"
    if key.strip() == "checks":
        return f"checks.enabled{sep}{value}"
    return text


def config_from_data(data: dict, base_dir: Path, overrides: Sequence[str] = ()) -> AuditConfig:
    """A config from plain data (a parsed TOML file or the Python API's dict), paths relative to ``base_dir``.
    Checks and their settings may be given in either form (``_checks_table``); overrides too."""
    check_nesting(data)
    data = _checks_table(copy.deepcopy(dict(data)))
    data = _loaded_form(apply_overrides(data, [_override_key(t) for t in overrides]))
    check_nesting(data)
    if "base_dir" in data:
        raise UsageError("base_dir: set by advaudit (the config file's folder), not a key of the file")
    return resolve_paths(from_data(AuditConfig, data), base_dir)


def load_config(path: Path, overrides: Sequence[str] = ()) -> AuditConfig:
    """The config file at ``path`` with ``--set`` overrides; relative paths are relative to its folder."""
    return config_from_data(read_toml(path), Path(path).resolve().parent, overrides)


# The demo's training budget, sized to finish in a minute on two CPU cores (bench/demo_walltime.py): at 20 epochs of
# batch 128 the 8x8 digits reach 98% clean and PGD-AT 81% robust at the threat eps (30 epochs of 64: within 2
# points); 10 epochs per fold keep out-of-fold accuracy at 96% and the flip self-test's F1 at 0.9.
DEMO_TRAINING: dict[str, Any] = dict(epochs=20, batch_size=128, lr=3e-3)
DEMO_FOLD_EPOCHS = 10


def demo_config(base_dir: Path | None = None) -> AuditConfig:
    """The built-in demo: the small CNN on scikit-learn's 8x8 digits under a declared Linf 0.1 threat model, with
    and without PGD adversarial training; every check on, the "quick" attack preset (native Square still checks
    for gradient masking), judged under the shipped "screening" policy: the default policy's thresholds, but a
    screening, not a sign-off (the quick preset and the digits' 450 test points are below a sign-off's evidence)."""
    from audit.config.attacks import AttackConfig
    from audit.config.data_checks import BackdoorConfig, LabelIssuesConfig
    from audit.config.defences import DefenceConfig
    from audit.config.sections import TrainingConfig
    from audit.config.threat import ThreatModelConfig
    return resolve_paths(AuditConfig(threat_model=ThreatModelConfig(eps=0.1, name="digits-8x8-linf-0.1"),
                                     attacks=AttackConfig(preset="quick"),
                                     training=TrainingConfig(**DEMO_TRAINING),
                                     label_issues=LabelIssuesConfig(epochs=DEMO_FOLD_EPOCHS),
                                     backdoor=BackdoorConfig(selftest_epochs=30),
                                     defences=(DefenceConfig(name="pgd_at", method="pgd", steps=7),),
                                     candidate="pgd_at", policy="screening"), base_dir or Path.cwd())

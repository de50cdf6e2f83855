"""Config-relative paths, resolved once when the config loads, and every referenced file checked then (exit 2).

A path in the file is relative to the config file's folder; once loaded every path key holds an absolute path,
so no later room resolves anything again.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from audit.config.policy import BUILTIN
from audit.core.errors import UsageError


def _abs(value: str, base: Path, key: str = "a path") -> str:
    if "\x00" in value:
        raise UsageError(f"{key}: the path contains a NUL byte")
    return str((base / value).resolve()) if value else ""


def _must_exist(key: str, value: str, kind: str = "file") -> None:
    if not value:
        return
    p = Path(value)
    ok = p.is_file() if kind == "file" else p.exists()
    if not ok:
        raise UsageError(f"{key}: file not found: {p}")


def resolve_paths(config, base_dir: Path):
    """``config`` with every relative path made absolute against ``base_dir``, every referenced file checked."""
    base = Path(base_dir).resolve()
    d, m, li, o = config.data, config.model, config.label_issues, config.output
    data = dataclasses.replace(d, path=_abs(d.path, base, "data.path"),
                               test_path=_abs(d.test_path, base, "data.test_path"),
                               ood_path=_abs(d.ood_path, base, "data.ood_path"))
    model = dataclasses.replace(m, weights=_abs(m.weights, base, "model.weights"),
                                archive=_abs(m.archive, base, "model.archive"))
    defences = tuple(dataclasses.replace(x, weights=_abs(x.weights, base, "defences.weights")) for x in config.defences)
    label_issues = dataclasses.replace(li, pred_probs=_abs(li.pred_probs, base, "label_issues.pred_probs"))
    output = dataclasses.replace(o, sign_key=_abs(o.sign_key, base, "output.sign_key"))
    policy = config.policy if config.policy in BUILTIN else _abs(config.policy, base, "policy")
    out = dataclasses.replace(config, data=data, model=model, defences=defences, label_issues=label_issues,
                              output=output, policy=policy, base_dir=str(base))
    check_files(out)
    return out


def check_files(config) -> None:
    """Every file the config names exists (before anything is loaded, let alone trained)."""
    d = config.data
    _must_exist("data.path", d.path, "path")
    _must_exist("data.test_path", d.test_path)
    _must_exist("data.ood_path", d.ood_path)
    _must_exist("model.weights", config.model.weights)
    _must_exist("model.archive", config.model.archive)
    for x in config.defences:
        _must_exist(f"defences.{x.name}.weights", x.weights)
    _must_exist("label_issues.pred_probs", config.label_issues.pred_probs)
    _must_exist("output.sign_key", config.output.sign_key)
    if config.policy not in BUILTIN:
        _must_exist("policy", config.policy)

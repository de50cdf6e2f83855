"""Upper bounds on every size a config can ask for, checked at load (exit 2 naming the key and the bound).

A value past its bound would not make a better audit, only one that never ends or exhausts memory: 10,000 eps
values, a million epochs or a batch of 10^12 rows are typos or attacks. ``LIMITS`` is the documented table (the
README's "Bounds"), a field's own ``metadata={"bound": ...}`` beside it (a check's settings carry theirs);
every other integer or number of the config is bounded by ``DEFAULT_INT`` and every list by
``DEFAULT_ITEMS``. Bounds that depend on the data (folds relative to the rows) are checked once the data is
loaded (``check_data_bounds``).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from audit.core.errors import UsageError

LIMITS: dict[str, int] = {
    "attacks.eps": 32,                    # values in the eps grid
    "attacks.batch_size": 65_536,
    "attacks.pgd_steps": 10_000, "attacks.apgd_steps": 10_000, "attacks.fab_steps": 10_000,
    "attacks.pgd_restarts": 100, "attacks.apgd_restarts": 100, "attacks.fab_restarts": 100,
    "attacks.square_restarts": 100,
    "attacks.square_queries": 100_000,
    "attacks.n_targets": 1_000,
    "attacks.probe_points": 100_000, "attacks.square_points": 100_000, "attacks.art_crosscheck_points": 100_000,
    "training.epochs": 1_000,
    "training.batch_size": 65_536,
    "defences": 32,                       # defended variants
    "defences[].steps": 1_000,
    "deployments[].finetune_epochs": 1_000,
    "deployments[].calibration_rows": 100_000,
    "data.class_names": 100_000,
    "data.image_size[]": 4_096,           # pixels per side of a resized folder image
    "data.max_test": 1_000_000,           # test points a screening subsample keeps (at least the class count)
}
DEFAULT_INT = 10_000_000
DEFAULT_ITEMS = 10_000
UNBOUNDED = {"seed", "data.kwargs", "model.kwargs", "base_dir", "input.clip[]", "input.mean[]", "input.std[]"}


def _key(path: str) -> str:
    """"defences[2].steps" -> "defences[].steps" (a bound applies to every item of a list)."""
    return re.sub(r"\[\d+\]", "[]", path)


def _check(path: str, value: Any, bound: int | None = None) -> None:
    """``bound``: the field's own (``field(metadata={"bound": ...})``, a section's or a check's), before LIMITS."""
    key = _key(path)
    if key in UNBOUNDED:
        return
    if isinstance(value, (tuple, list)):
        limit = bound or LIMITS.get(key, DEFAULT_ITEMS)
        if len(value) > limit:
            raise UsageError(f"{path}: {len(value):,} items; at most {limit:,} (advaudit's bound on {key})")
        for i, v in enumerate(value):
            _check(f"{path}[{i}]", v)
        return
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _check(f"{path}.{f.name}" if path else f.name, getattr(value, f.name), f.metadata.get("bound"))
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    limit = bound or LIMITS.get(key, DEFAULT_INT)
    if value > limit:
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        raise UsageError(f"{path}: {shown} is above advaudit's bound of {limit:,} for {key}")


def check_bounds(config) -> None:
    """Every size in ``config`` within its bound."""
    _check("", config)


def check_data_bounds(config, n_train: int, smallest_class: int) -> None:
    """Bounds relative to the data: K-fold needs every class in every fold."""
    folds = config.label_issues.folds
    if folds > max(smallest_class, 2):
        raise UsageError(f"label_issues.folds: {folds} folds on {n_train} training rows whose smallest class has "
                         f"{smallest_class}; give at most {max(smallest_class, 2)} (each fold needs every class)")

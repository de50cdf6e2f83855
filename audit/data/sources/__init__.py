"""Data sources, one file per format. ``SOURCES`` is the only registry; ``load_data`` also checks the result."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from audit.core.errors import UsageError
from audit.data.memory import return_freed_memory
from audit.data.rows import scan
from audit.data.sources.builtin import load_breast_cancer, load_digits, load_digits28
from audit.data.sources.factory import load_factory
from audit.data.sources.folder import load_folder
from audit.data.sources.npy import load_npy
from audit.data.sources.npz import load_npz, load_ood
from audit.data.sources.table import load_table
from audit.data.splits import Splits, standardise
from audit.data.subsample import subsample_test

Loader = Callable[..., Splits]
BUILTIN: dict[str, Loader] = {"digits": load_digits, "digits28": load_digits28, "breast-cancer": load_breast_cancer}
SOURCES: dict[str, Loader] = {**BUILTIN, "npz": load_npz, "npy": load_npy, "folder": load_folder, "table": load_table,
                              "factory": load_factory}
NEEDS_PATH = ("npz", "npy", "folder", "table")
STREAMED = ("npy", "folder", "factory")  # sources whose inputs are read batch by batch


def load_data(cfg, input_cfg, base_dir: Path, seed: int) -> Splits:
    """Load ``cfg.source``, apply the declared input domain and check the splits (one-line errors, exit 2); with
    ``cfg.max_test``, the test split is a stratified subsample drawn with ``seed`` (``audit.data.subsample``)."""
    base_dir = Path(base_dir)
    path = base_dir / cfg.path if cfg.path else base_dir  # absolute once the config loaded; else relative
    if cfg.source in STREAMED:
        return_freed_memory()
    if cfg.source in BUILTIN:
        splits = BUILTIN[cfg.source](test_fraction=cfg.test_fraction, seed=seed)
    else:
        splits = SOURCES[cfg.source](cfg, path=path, base_dir=base_dir, seed=seed)
    splits = subsample_test(splits, cfg.max_test, seed)  # first: a lazy test split is scanned only where sampled
    ranges = check_shapes(splits)
    splits = _apply_domain(splits, cfg, input_cfg)
    check_splits(splits, ranges)
    splits = subsample_test(splits, cfg.max_test, seed)  # again (a no-op): max_test against the classes now known
    if cfg.ood_path:
        splits = dataclasses.replace(splits, x_ood=load_ood(base_dir / cfg.ood_path, splits.input_shape))
    return splits


def from_arrays(arrays: dict, cfg, input_cfg, name: str = "in-memory arrays") -> Splits:
    """Splits from in-memory arrays (x_train, y_train, x_test, y_test, optionally x_val, y_val; numpy or torch),
    checked like a file's: one-line errors naming the array."""
    from audit.data.splits import as_inputs, as_labels
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise UsageError(f"data: the arrays lack {', '.join(missing)}")
    given = [k for k in ("x_train", "x_test", "x_val", "y_train", "y_test", "y_val") if arrays.get(k) is not None]
    x: dict[str, Any] = {k: as_inputs(arrays[k], f"data[{k!r}]") for k in given if k.startswith("x_")}
    y: dict[str, Any] = {k: as_labels(arrays[k], f"data[{k!r}]") for k in given if k.startswith("y_")}
    kind = cfg.kind or ("tabular" if x["x_train"].dim() == 2 else "image")
    splits = Splits(name=name, kind=kind, num_classes=0, clip=(0.0, 1.0), class_names=(), **x, **y)
    ranges = check_shapes(splits)
    splits = _apply_domain(splits, cfg, input_cfg)
    check_splits(splits, ranges)
    return splits


def _apply_domain(s: Splits, cfg, input_cfg) -> Splits:
    changes: dict = {}
    if s.kind == "tabular" and s.bounds is None:
        if not isinstance(s.x_train, torch.Tensor) or not isinstance(s.x_test, torch.Tensor):  # s.lazy
            raise UsageError("data: tabular inputs must fit in memory (use source = 'table' or 'npz')")
        changes.update(standardise(s.x_train.double().numpy(), s.x_test.double().numpy(),
                                   [f"f{i}" for i in range(s.x_train.shape[1])]))
    elif s.kind == "image" and s.preprocessing.get("scaled") is None:
        changes["clip"] = tuple(float(c) for c in input_cfg.clip)
    if cfg.class_names:
        changes["class_names"] = tuple(cfg.class_names)
    if cfg.num_classes:
        changes["num_classes"] = cfg.num_classes
    s = dataclasses.replace(s, **changes) if changes else s
    if not s.num_classes:
        top = max(int(s.y_train.max()) if len(s.y_train) else -1, int(s.y_test.max()) if len(s.y_test) else -1)
        s = dataclasses.replace(s, num_classes=max(len(s.class_names), top + 1))
    if not s.class_names:
        s = dataclasses.replace(s, class_names=tuple(str(i) for i in range(s.num_classes)))
    return s


def check_shapes(s: Splits) -> dict[str, tuple[float, float]]:
    """Before anything is computed on the data: no empty split, one label per input, the same input shape in
    every split, and no NaN/Inf input. Returns each split's (min, max) from the same streamed pass."""
    ranges = {}
    for split, x, y in (("train", s.x_train, s.y_train), ("test", s.x_test, s.y_test)):
        if x.shape[0] == 0:
            raise UsageError(f"data: the {split} split is empty")
        if x.shape[0] != y.shape[0]:
            raise UsageError(f"data: the {split} split has {x.shape[0]} inputs but {y.shape[0]} labels")
        if tuple(x.shape[1:]) != s.input_shape:
            raise UsageError(f"data: the {split} inputs have shape {tuple(x.shape[1:])} (per row), the train inputs "
                             f"{s.input_shape}")
        count, first, lo, hi = scan(x)
        if count:
            raise UsageError(f"data: {count} {split} input row(s) contain NaN or Inf (first: row {first})")
        ranges[split] = (lo, hi)
    return ranges


def check_splits(s: Splits, ranges: dict[str, tuple[float, float]]) -> None:
    """At least two classes, labels in range, and values inside the clip range."""
    if s.num_classes < 2 or len(torch.unique(s.y_train)) < 2:
        raise UsageError(f"data: the training labels hold {len(torch.unique(s.y_train))} class(es); a classifier "
                         f"audit needs at least 2")
    for split, _x, y in (("train", s.x_train, s.y_train), ("test", s.x_test, s.y_test)):
        if int(y.max()) >= s.num_classes:
            row = int(torch.argmax(y))
            raise UsageError(f"data: {split} label {int(y[row])} (row {row}) is out of range for {s.num_classes} "
                             f"classes (labels must be 0..{s.num_classes - 1})")
        if s.bounds is None:
            lo, hi = ranges[split]
            if lo < s.clip[0] - 1e-6 or hi > s.clip[1] + 1e-6:
                raise UsageError(f"data: {split} inputs span [{lo:g}, {hi:g}] but input.clip is "
                                 f"[{s.clip[0]:g}, {s.clip[1]:g}]; rescale the data (e.g. /255) or set input.clip")
    if len(s.class_names) != s.num_classes:
        raise UsageError(f"data.class_names: {len(s.class_names)} names for {s.num_classes} classes")

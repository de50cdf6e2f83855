"""Data from the user's Python function (``data.factory = "package.module:function"``, kwargs from the config).

The function returns either a dict / 4-tuple ``(x_train, y_train, x_test, y_test)`` of tensors or arrays, or a
pair / dict of ``torch.utils.data.Dataset`` objects ``(train, test)`` yielding ``(x, y)``; datasets are read
lazily, row by row, in batches.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audit.core.errors import UsageError
from audit.core.importing import import_callable
from audit.data.rows import Rows
from audit.data.splits import Splits, as_inputs, as_labels


class DatasetRows(Rows):
    """The inputs of a map-style torch Dataset, read on demand."""

    def __init__(self, dataset, where: str):
        self.dataset, self.where = dataset, where
        try:
            n = len(dataset)
            first = torch.as_tensor(np.asarray(dataset[0][0]))
        except Exception as e:  # noqa: BLE001 - user code
            raise UsageError(f"{where}: the dataset cannot be read ({type(e).__name__}: {e})") from None
        self.shape = (n, *first.shape)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(self.dataset[int(i)][0], dtype=np.float32) for i in indices]) \
            if len(indices) else np.empty((0, *self.shape[1:]), np.float32)

    def labels(self) -> torch.Tensor:
        return as_labels([int(self.dataset[i][1]) for i in range(len(self.dataset))], f"{self.where} labels")


def load_factory(cfg, path: Path, base_dir: Path, **_) -> Splits:
    fn = import_callable(cfg.factory, "data.factory", base_dir)
    try:
        out = fn(**dict(cfg.kwargs))
    except Exception as e:  # noqa: BLE001 - user code
        raise UsageError(f"data.factory: {cfg.factory} raised {type(e).__name__}: {e}") from None
    if isinstance(out, dict):
        out = tuple(out.get(k) for k in (("x_train", "y_train", "x_test", "y_test") if "x_train" in out
                                         else ("train", "test")))
    if isinstance(out, tuple) and len(out) == 2 and all(isinstance(d, torch.utils.data.Dataset) for d in out):
        train, test = DatasetRows(out[0], "data.factory train"), DatasetRows(out[1], "data.factory test")
        return Splits(name=cfg.factory, kind=cfg.kind or "image", x_train=train, y_train=train.labels(),
                      x_test=test, y_test=test.labels(), num_classes=0, clip=(0.0, 1.0), class_names=())
    if not (isinstance(out, tuple) and len(out) == 4) or any(v is None for v in out):
        raise UsageError(f"data.factory: {cfg.factory} must return (x_train, y_train, x_test, y_test), a dict with "
                         f"those keys, or (train_dataset, test_dataset)")
    x_tr, y_tr, x_te, y_te = (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for v in out)
    return Splits(name=cfg.factory, kind=cfg.kind or ("tabular" if np.ndim(x_tr) == 2 else "image"),
                  x_train=as_inputs(x_tr, "data.factory x_train"), y_train=as_labels(y_tr, "data.factory y_train"),
                  x_test=as_inputs(x_te, "data.factory x_test"), y_test=as_labels(y_te, "data.factory y_test"),
                  num_classes=0, clip=(0.0, 1.0), class_names=())

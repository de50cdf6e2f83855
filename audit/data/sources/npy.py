"""Memory-mapped ``.npy`` pairs in a directory: ``x_train.npy, y_train.npy, x_test.npy, y_test.npy``.

Inputs are read lazily, batch by batch, with plain file reads at the offsets the ``.npy`` header gives, so a data
set larger than RAM can be audited and the process never keeps more than one batch resident. Labels are loaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.core.errors import UsageError
from audit.data.limits import array_bytes, check_declared, npy_header
from audit.data.rows import Rows
from audit.data.splits import Splits, as_labels


class NpyRows(Rows):
    """Rows of a C-ordered numeric ``.npy`` file, read on demand (no pickle: object arrays are refused)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with open(path, "rb") as fh:
                shape, fortran, dtype = npy_header(fh)
                self.offset = fh.tell()
        except FileNotFoundError:
            raise UsageError(f"data.path: file not found: {path}") from None
        except (OSError, ValueError) as e:
            raise UsageError(f"data.path: {path} is not a readable .npy file ({e})") from None
        if dtype.hasobject or dtype.kind not in "iuf":
            raise UsageError(f"data.path: {path.name} has dtype {dtype}; inputs must be numeric (no object arrays)")
        if fortran:
            raise UsageError(f"data.path: {path.name} is Fortran-ordered; "
                             "save it with np.save(np.ascontiguousarray(x))")
        if len(shape) < 2:
            raise UsageError(f"data.path: {path.name} has shape {shape}; inputs need (N, ...) with one row per example")
        self.shape, self.dtype = tuple(shape), dtype
        if any(int(s) <= 0 for s in shape):
            raise UsageError(f"data.path: {path.name} has shape {shape}; every dimension must be > 0")
        self.row_items = int(np.prod(shape[1:], dtype=object))
        self.row_bytes = self.row_items * dtype.itemsize
        size = path.stat().st_size
        if size < self.offset + self.row_bytes * shape[0]:
            raise UsageError(f"data.path: {path.name} is truncated ({size} bytes for shape {shape})")

    def read(self, indices: np.ndarray) -> np.ndarray:
        n = len(indices)
        direct = self.dtype == np.dtype(np.float32)  # read straight into the output: no intermediate copy
        out = np.empty((n, self.row_items), dtype=np.float32)
        if n == 0:
            return out.reshape(0, *self.shape[1:])
        with open(self.path, "rb", buffering=0) as fh:
            # contiguous runs of indices are read in one call
            breaks = np.flatnonzero(np.diff(indices) != 1) + 1
            start = 0
            for stop in [*breaks.tolist(), n]:
                first, count = int(indices[start]), stop - start
                if first < 0 or first + count > self.shape[0]:
                    raise IndexError(f"row {first + count - 1} out of range for {self.path.name}")
                fh.seek(self.offset + first * self.row_bytes)
                if direct:
                    fh.readinto(out[start:stop].data.cast("B"))
                else:
                    raw = np.frombuffer(fh.read(count * self.row_bytes), dtype=self.dtype)
                    out[start:stop] = raw.reshape(count, self.row_items)
                start = stop
        return out.reshape(n, *self.shape[1:])


def _labels(path: Path, cfg=None) -> np.ndarray:
    """A label file, read whole (labels are small): its header's declared size is checked against the file and the
    memory limit before anything is allocated."""
    try:
        with open(path, "rb") as fh:
            shape, _f, dtype = npy_header(fh)
            offset = fh.tell()
    except FileNotFoundError:
        raise UsageError(f"data.path: file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"data.path: {path} is not a readable numeric .npy file ({e})") from None
    declared = array_bytes(shape, dtype)
    if path.stat().st_size < offset + declared:
        raise UsageError(f"data.path: {path.name} is truncated ({path.stat().st_size} bytes for shape {shape})")
    check_declared(cfg, declared, path.name)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"data.path: file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"data.path: {path} is not a readable numeric .npy file ({e})") from None


def load_npy(cfg, path: Path, **_) -> Splits:
    if not path.is_dir():
        raise UsageError(f"data.path: {path} is not a directory holding x_train.npy, y_train.npy, x_test.npy, "
                         f"y_test.npy")
    x_train, x_test = NpyRows(path / "x_train.npy"), NpyRows(path / "x_test.npy")
    x_val, y_val = None, None
    if (path / "x_val.npy").exists():
        x_val = NpyRows(path / "x_val.npy")
        y_val = as_labels(_labels(path / "y_val.npy", cfg), "y_val.npy")
    return Splits(name=path.name, kind=cfg.kind or ("tabular" if len(x_train.shape) == 2 else "image"),
                  x_train=x_train, y_train=as_labels(_labels(path / "y_train.npy", cfg), "y_train.npy"),
                  x_test=x_test, y_test=as_labels(_labels(path / "y_test.npy", cfg), "y_test.npy"),
                  num_classes=0, clip=(0.0, 1.0), class_names=(), x_val=x_val, y_val=y_val)

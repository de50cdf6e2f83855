"""A NumPy ``.npz`` archive with ``x_train, y_train, x_test, y_test`` (and optionally ``x_val, y_val``).

Loaded with ``allow_pickle=False``: an archive holding object arrays (which would need unpickling) is refused.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from audit.core.errors import UsageError
from audit.data.limits import array_bytes, check_declared, npy_header
from audit.data.splits import Splits, as_inputs, as_labels

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def declared_bytes(path: Path, members: tuple[str, ...] | None = None) -> int:
    """The bytes the archive's members declare (the larger of the zip header's size and the ``.npy`` header's
    shape x dtype), read from the headers alone; a member that claims less than its header's array is corrupt."""
    total = 0
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if members is not None and name not in members:
                continue
            declared = 0
            with z.open(info) as fh:  # only the header is decompressed
                try:
                    shape, _fortran, dtype = npy_header(fh)
                    declared = array_bytes(shape, dtype)
                except (ValueError, OSError, EOFError):
                    pass  # not an array: np.load names it below
            total += max(int(info.file_size), declared)
    return total


def load_npz(cfg, path: Path, **_) -> Splits:
    if not path.is_file():
        raise UsageError(f"data.path: file not found: {path}")
    try:
        declared = declared_bytes(path, REQUIRED + ("x_val", "y_val"))
    except Exception as e:  # noqa: BLE001 - a zip whose headers cannot be read is not decompressed at all
        raise UsageError(f"data.path: {path.name} is not a readable .npz archive ({type(e).__name__}: "
                         f"{str(e)[:120]})") from None
    check_declared(cfg, declared, path.name)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"data.path: file not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise UsageError(f"data.path: {path} is not a readable .npz archive ({e})") from None
    except Exception as e:  # noqa: BLE001 - numpy's reader on a foreign file: any failure is bad input
        raise UsageError(f"data.path: {path} is not a readable .npz archive ({type(e).__name__}: {e})") from None
    with archive:
        missing = [k for k in REQUIRED if k not in archive.files]
        if missing:
            raise UsageError(f"data.path: {path.name} lacks {', '.join(missing)}; it has {', '.join(archive.files)} "
                             f"(expected {', '.join(REQUIRED)}, optionally x_val, y_val)")
        try:
            arrays = {k: archive[k] for k in archive.files if k in REQUIRED + ("x_val", "y_val")}
        except ValueError as e:  # object arrays: "Object arrays cannot be loaded when allow_pickle=False"
            if "allow_pickle" in str(e) or "Object arrays" in str(e):
                raise UsageError(f"data.path: {path.name} holds object arrays, which need unpickling; refusing "
                                 f"(save numeric arrays)") from None
            raise UsageError(f"data.path: {path.name} has an unreadable member ({e})") from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:  # a corrupted member (bad CRC, truncated)
            raise UsageError(f"data.path: {path.name} is corrupted ({e})") from None
    x_val = y_val = None
    if "x_val" in arrays and "y_val" in arrays:
        x_val = as_inputs(arrays["x_val"], f"{path.name}:x_val")
        y_val = as_labels(arrays["y_val"], f"{path.name}:y_val")
    return Splits(name=path.stem, kind=cfg.kind or ("tabular" if arrays["x_train"].ndim == 2 else "image"),
                  x_train=as_inputs(arrays["x_train"], f"{path.name}:x_train"),
                  y_train=as_labels(arrays["y_train"], f"{path.name}:y_train"),
                  x_test=as_inputs(arrays["x_test"], f"{path.name}:x_test"),
                  y_test=as_labels(arrays["y_test"], f"{path.name}:y_test"),
                  num_classes=0, clip=(0.0, 1.0), class_names=(), x_val=x_val, y_val=y_val)


def load_ood(path: Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """The user's out-of-distribution inputs: array ``x`` of an .npz (never unpickled), shaped like the data."""
    try:
        check_declared(None, declared_bytes(path, ("x",)), path.name, "data.ood_path")
        with np.load(path, allow_pickle=False) as z:
            x = np.asarray(z["x"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError, zlib.error, RuntimeError,
            NotImplementedError) as e:
        raise UsageError(f"data.ood_path: cannot read array 'x' from {path} ({e})") from None
    if x.dtype.kind not in "iuf":
        raise UsageError(f"data.ood_path: array 'x' has dtype {x.dtype}; it must be numeric")
    if tuple(x.shape[1:]) != tuple(input_shape) or x.shape[0] == 0:
        raise UsageError(f"data.ood_path: inputs have shape {tuple(x.shape[1:])} ({x.shape[0]} rows), the data "
                         f"{tuple(input_shape)}")
    if not np.isfinite(x).all():
        raise UsageError("data.ood_path: array 'x' holds NaN or Inf")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

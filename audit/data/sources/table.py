"""A CSV or Parquet table with one row per example and a label column.

Features must be numeric; they are standardised with the train split's mean and std, and attacks perturb them in
those units, clipped per feature to the range observed in the data. The test split is ``data.test_path`` when
given, else a stratified ``test_fraction`` of the table. String labels become class indices in sorted order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audit.core.errors import UsageError
from audit.data.limits import check_declared
from audit.data.splits import Splits, as_labels, standardise, stratified_split

CSV_EXPANSION = 4  # a parsed CSV holds about this many times its bytes while pandas reads it


def check_table_size(cfg, path: Path) -> None:
    """What reading the table will hold in memory, from its size (CSV) or its footer (Parquet), before reading."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
            meta = pq.ParquetFile(path).metadata
            declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        except Exception as e:  # noqa: BLE001 - a footer that cannot be read is not a Parquet file
            raise UsageError(f"data: cannot read the Parquet footer of {path}: {str(e)[:160]}") from None
    else:
        declared = CSV_EXPANSION * path.stat().st_size
    check_declared(cfg, declared, path.name)


def _read(path: Path, cfg=None):
    import pandas as pd
    if not path.is_file():
        raise UsageError(f"data: file not found: {path}")
    check_table_size(cfg, path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            try:
                return pd.read_parquet(path)
            except ImportError as e:
                raise UsageError(f"data: reading Parquet needs pyarrow ({e})") from None
        return pd.read_csv(path)
    except UsageError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"data: cannot read table {path}: {e}") from None


def _split_columns(frame, label: str, where: str):
    if label not in frame.columns:
        raise UsageError(f"data.label_column: {label!r} is not a column of {where}; columns: "
                         f"{', '.join(map(str, frame.columns[:20]))}")
    features = frame.drop(columns=[label])
    bad = [str(c) for c in features.columns if features[c].dtype.kind not in "iufb"]
    if bad:
        raise UsageError(f"data: feature column(s) {', '.join(bad[:5])} of {where} are not numeric; encode them "
                         f"first")
    return features.to_numpy(dtype=np.float64), frame[label].to_numpy(), [str(c) for c in features.columns]


def _encode(train_labels, test_labels, where: str):
    if train_labels.dtype.kind in "iuf" and test_labels.dtype.kind in "iuf":
        return as_labels(train_labels, f"{where} (train)"), as_labels(test_labels, f"{where} (test)"), None
    names = sorted({str(v) for v in train_labels})
    index = {n: i for i, n in enumerate(names)}
    unseen = sorted({str(v) for v in test_labels} - set(index))
    if unseen:
        raise UsageError(f"{where}: test labels {', '.join(unseen[:5])} never occur in the train split")
    encode = np.vectorize(lambda v: index[str(v)], otypes=[np.int64])
    return torch.from_numpy(encode(train_labels)), torch.from_numpy(encode(test_labels)), tuple(names)


def load_table(cfg, path: Path, base_dir: Path, seed: int = 0, **_) -> Splits:
    frame = _read(path, cfg)
    x, y, columns = _split_columns(frame, cfg.label_column, path.name)
    if cfg.test_path:
        test_path = Path(base_dir) / cfg.test_path
        tx, ty, tcols = _split_columns(_read(test_path, cfg), cfg.label_column, test_path.name)
        if tcols != columns:
            raise UsageError(f"data.test_path: {test_path.name} has columns {tcols[:5]}..., not those of "
                             f"{path.name} ({columns[:5]}...)")
        x_tr, y_tr, x_te, y_te = x, y, tx, ty
    else:
        codes = np.unique(y.astype(str), return_inverse=True)[1]
        tr, te = stratified_split(codes, cfg.test_fraction, seed)
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
    if not np.isfinite(x_tr).all() or not np.isfinite(x_te).all():
        bad = np.flatnonzero(~np.isfinite(np.concatenate([x_tr, x_te])).all(1))[0]
        raise UsageError(f"data: {path.name} has NaN or Inf feature values (first in row {bad} of the splits); "
                         f"impute or drop them first")
    y_train, y_test, names = _encode(y_tr, y_te, f"data.label_column {cfg.label_column!r}")
    std = standardise(x_tr, x_te, columns)
    return Splits(name=path.stem, kind="tabular", y_train=y_train, y_test=y_test, num_classes=0,
                  class_names=names or (), **std)

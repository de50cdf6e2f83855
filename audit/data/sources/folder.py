"""An image-folder tree: one sub-folder per class holding PNG/JPEG files (read with Pillow, lazily).

Layout: ``path/train/<class>/*.png`` and ``path/test/<class>/*.png``; or ``path/<class>/*.png`` split by
``test_fraction``. Class names are the sorted train sub-folder names. Pixels are scaled to [0, 1]; images are
resized to ``data.image_size`` when given, otherwise to the size of the first train image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audit.core.errors import UsageError
from audit.data.rows import Rows
from audit.data.splits import Splits, stratified_split

MAX_SIDE = 4096  # pixels a side (the bound on data.image_size)
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class FolderRows(Rows):
    """Images decoded on demand as float32 (C, H, W) in [0, 1]."""

    def __init__(self, files: list[Path], mode: str, size: tuple[int, int]):
        self.files, self.mode, self.size = files, mode, size  # size = (H, W)
        channels = {"L": 1, "RGB": 3}[mode]
        self.shape = (len(files), channels, size[0], size[1])

    def read(self, indices: np.ndarray) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.float32)
        for j, i in enumerate(indices):
            path = self.files[int(i)]
            try:
                with Image.open(path) as raw:
                    im = raw.convert(self.mode)
                    if im.size != (self.size[1], self.size[0]):
                        im = im.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
                raise UsageError(f"data: cannot read image {path}: {e}") from None
            out[j] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return out


def _scan(root: Path, classes: list[str] | None) -> tuple[list[Path], list[int], list[str]]:
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise UsageError(f"data.path: {root} has class folder(s) {', '.join(unknown)} not present in the train "
                         f"split ({', '.join(classes)})")
    files, labels = [], []
    for c, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.suffix.lower() in SUFFIXES:
                files.append(f)
                labels.append(c)
    return files, labels, classes


def _split_layout(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "test").is_dir()


def image_files(path: Path) -> list[Path]:
    """Every image file ``load_folder`` reads under ``path``, as its scan finds them (train then test; before any
    split), so the provenance block hashes exactly these."""
    if _split_layout(path):
        train, _labels, classes = _scan(path / "train", None)
        return train + _scan(path / "test", classes)[0]
    return _scan(path, None)[0]


def load_folder(cfg, path: Path, seed: int = 0, **_) -> Splits:
    if not path.is_dir():
        raise UsageError(f"data.path: {path} is not a directory of class folders")
    from PIL import Image, UnidentifiedImageError
    if _split_layout(path):
        train_files, y_train, classes = _scan(path / "train", None)
        test_files, y_test, _test_classes = _scan(path / "test", classes)
    else:
        files, labels, classes = _scan(path, None)
        none = np.empty(0, dtype=np.int64)
        tr, te = stratified_split(np.array(labels), cfg.test_fraction, seed) if labels else (none, none)
        train_files, y_train = [files[i] for i in tr], [labels[i] for i in tr]
        test_files, y_test = [files[i] for i in te], [labels[i] for i in te]
    if not train_files:
        raise UsageError(f"data.path: no PNG/JPEG images found in class folders under {path}")
    if cfg.image_size:
        size = (int(cfg.image_size[0]), int(cfg.image_size[-1]))
    else:
        try:
            with Image.open(train_files[0]) as im:  # reads the header only
                size = (im.size[1], im.size[0])
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise UsageError(f"data: cannot read image {train_files[0]}: {e}") from None
        if max(size) > MAX_SIDE:
            raise UsageError(f"data.image_size: the first training image is {size[1]}x{size[0]} pixels; images are "
                             f"used at that size unless data.image_size is set: give one of at most {MAX_SIDE} a side")
    mode = {1: "L", 3: "RGB"}[cfg.channels or 3]
    return Splits(name=path.name, kind="image", x_train=FolderRows(train_files, mode, size),
                  y_train=torch.tensor(y_train, dtype=torch.int64), x_test=FolderRows(test_files, mode, size),
                  y_test=torch.tensor(y_test, dtype=torch.int64), num_classes=len(classes), clip=(0.0, 1.0),
                  class_names=tuple(classes),
                  preprocessing={"decoded": f"Pillow, mode {mode}, resized to {size[0]}x{size[1]}",
                                 "scaled": "pixel / 255 into [0, 1]"})

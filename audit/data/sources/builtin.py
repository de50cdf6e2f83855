"""Built-in data sets shipped inside scikit-learn (nothing is downloaded): digits (images), breast-cancer (tabular)."""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import cast

import numpy as np
import torch

from audit.data.splits import Splits, standardise, stratified_split


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images, targets) of scikit-learn's digits, read from the CSV scikit-learn ships (the same file its
    ``load_digits`` parses) without importing scikit-learn, which costs seconds on a small machine."""
    spec = importlib.util.find_spec("sklearn")
    where = spec.submodule_search_locations if spec else None
    path = Path(where[0]) / "datasets" / "data" / "digits.csv.gz" if where else None
    if path is None or not path.is_file():  # another layout: let scikit-learn read it
        from sklearn.datasets import load_digits as sk_digits
        d = sk_digits()
        return d.images, d.target
    with gzip.open(path) as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def load_digits(test_fraction: float = 0.25, seed: int = 0, **_) -> Splits:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1], shape (N, 1, 8, 8)."""
    images, target = _digits_arrays()
    x = (images.astype(np.float32) / 16.0)[:, None, :, :]
    y = target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    return Splits(name="digits", kind="image", x_train=torch.from_numpy(x[tr]), y_train=torch.from_numpy(y[tr]),
                  x_test=torch.from_numpy(x[te]), y_test=torch.from_numpy(y[te]), num_classes=10,
                  clip=(0.0, 1.0), class_names=tuple(str(i) for i in range(10)),
                  preprocessing={"scaled": "pixel / 16 into [0, 1]"})


CONTRAST = 3.0


def load_digits28(test_fraction: float = 0.25, seed: int = 0, **_) -> Splits:
    """The same digits as MNIST-like 28x28 images: upsampled (bilinear) and contrast-stretched (x3 about mid-grey)
    into crisp strokes, so that, as on MNIST, no two images of different classes are within Linf 0.8 of each other
    and eps 0.3 is a meaningful threat (on the blurred upsampling, 26% of test points have another class's
    training image within 0.6 = 2 x 0.3, which no classifier can be robust to). A harder fixture than 8x8 for
    attacks and adversarial training; nothing is downloaded."""
    s = load_digits(test_fraction, seed)
    dense = cast(tuple[torch.Tensor, torch.Tensor], (s.x_train, s.x_test))  # load_digits builds in-memory tensors
    up = [((torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False) - 0.5)
           * CONTRAST + 0.5).clamp(0, 1) for x in dense]
    return Splits(name="digits28", kind="image", x_train=up[0].contiguous(), y_train=s.y_train,
                  x_test=up[1].contiguous(), y_test=s.y_test, num_classes=10, clip=(0.0, 1.0),
                  class_names=s.class_names,
                  preprocessing={"scaled": "pixel / 16 into [0, 1], bilinear to 28x28, contrast x3 about 0.5"})


def load_breast_cancer(test_fraction: float = 0.25, seed: int = 0, **_) -> Splits:
    """scikit-learn's Wisconsin breast-cancer table (569 rows, 30 features, 2 classes), standardised."""
    from sklearn.datasets import load_breast_cancer as sk_bc
    d = sk_bc()
    x, y = d.data.astype(np.float64), d.target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    std = standardise(x[tr], x[te], d.feature_names)
    return Splits(name="breast-cancer", kind="tabular", y_train=torch.from_numpy(y[tr]),
                  y_test=torch.from_numpy(y[te]), num_classes=2, class_names=tuple(str(n) for n in d.target_names),
                  **std)

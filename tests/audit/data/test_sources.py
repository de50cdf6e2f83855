"""Every data source gives the same splits contract: inputs in the clip range, integer labels, lazily read where
the format allows it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audit.cli import main
from audit.config import DataConfig, InputConfig
from audit.data.rows import Rows, take
from audit.data.sources import load_data


def load(d, **kw):
    return load_data(DataConfig(**kw), InputConfig(), d, seed=0)


@pytest.fixture
def arrays(digits):
    return (digits.x_train[:100].numpy(), digits.y_train[:100].numpy(), digits.x_test[:40].numpy(),
            digits.y_test[:40].numpy())


def test_npy_directory_is_read_lazily_and_equals_the_arrays(tmp_path, arrays):
    for name, a in zip(("x_train", "y_train", "x_test", "y_test"), arrays, strict=False):
        np.save(tmp_path / f"{name}.npy", a)
    s = load(tmp_path, source="npy", path=".")
    assert isinstance(s.x_train, Rows) and s.lazy
    assert torch.equal(s.x_train[:], torch.from_numpy(arrays[0]))
    idx = np.array([5, 3, 4, 99, 0])
    assert torch.equal(s.x_train[idx], torch.from_numpy(arrays[0][idx]))
    assert torch.equal(take(s.x_test, idx)[1:3], torch.from_numpy(arrays[2][idx[1:3]]))
    in_memory = load(tmp_path.parent, source="npz", path=str(_npz(tmp_path, arrays)))
    assert s.sha256() == in_memory.sha256()  # streamed hash == in-memory hash


def _npz(d, arrays):
    p = d / "d.npz"
    np.savez(p, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
    return p


def test_image_folder_tree_with_train_and_test(tmp_path, arrays):
    from PIL import Image
    for split, x, y in (("train", arrays[0][:30], arrays[1][:30]), ("test", arrays[2][:12], arrays[3][:12])):
        for i, (img, label) in enumerate(zip(x, y, strict=False)):
            folder = tmp_path / split / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((img[0] * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    s = load(tmp_path, source="folder", path=".", channels=1)
    assert s.lazy and s.x_train.shape == (30, 1, 8, 8)
    assert s.class_names == tuple(sorted({f"class_{v}" for v in arrays[1][:30]}))
    first = s.x_train[:1][0]
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    rgb = load(tmp_path, source="folder", path=".", channels=3, image_size=(16, 16))
    assert rgb.x_test.shape[1:] == (3, 16, 16)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_tables_are_standardised_with_per_feature_bounds(tmp_path, suffix):
    import pandas as pd
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(50, 10, 200), "income": rng.normal(5e4, 1e4, 200),
                          "label": rng.choice(["no", "yes"], 200)})
    path = tmp_path / f"t.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    s = load(tmp_path, source="table", path=path.name)
    assert s.kind == "tabular" and s.class_names == ("no", "yes") and s.num_classes == 2
    assert abs(float(s.x_train.mean())) < 0.05 and abs(float(s.x_train.std()) - 1) < 0.05
    lo, hi = s.bounds
    assert bool((s.x_test >= lo).all()) and bool((s.x_test <= hi).all())
    assert s.feature_names == ("age", "income")


def test_a_table_with_text_features_names_the_column(tmp_path):
    (tmp_path / "t.csv").write_text("a,colour,label\n1,red,0\n2,blue,1\n")
    from audit.core.errors import UsageError
    with pytest.raises(UsageError, match="colour"):
        load(tmp_path, source="table", path="t.csv")


def dataset_factory():
    from torch.utils.data import TensorDataset
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 1, 8, 8, generator=g)
    y = torch.arange(50) % 10
    return TensorDataset(x[:40], y[:40]), TensorDataset(x[40:], y[40:])


def tensor_factory(n: int = 30):
    g = torch.Generator().manual_seed(0)
    return {"x_train": torch.rand(n, 4, generator=g), "y_train": torch.arange(n) % 3,
            "x_test": torch.rand(9, 4, generator=g), "y_test": torch.arange(9) % 3}


def test_factory_sources_accept_datasets_and_tensors():
    s = load(Path("."), source="factory", factory=f"{__name__}:dataset_factory")
    assert s.lazy and s.x_train.shape == (40, 1, 8, 8) and s.num_classes == 10
    t = load(Path("."), source="factory", factory=f"{__name__}:tensor_factory", kwargs={"n": 24})
    assert t.kind == "tabular" and t.x_train.shape == (24, 4) and t.bounds is not None


def test_breast_cancer_builtin_is_tabular_and_standardised():
    s = load(Path("."), source="breast-cancer")
    assert s.kind == "tabular" and s.input_shape == (30,) and s.class_names == ("malignant", "benign")
    assert len(s.feature_names) == 30


@pytest.mark.slow
def test_training_on_memory_mapped_data_works_end_to_end(tmp_path, arrays, capsys):
    for name, a in zip(("x_train", "y_train", "x_test", "y_test"), arrays, strict=False):
        np.save(tmp_path / f"{name}.npy", a)
    (tmp_path / "c.toml").write_text('checks = ["clean_accuracy", "robustness"]\n[data]\nsource = "npy"\npath = "."\n'
                                     '[training]\nepochs = 3\n[attacks]\npreset = "quick"\neps = [0.05, 0.1]\n'
                                     'pgd_steps = 3\n')
    code = main(["run", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "out")])
    assert code in (0, 1, 4), capsys.readouterr().err
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert r["dataset"]["lazy"] is True and r["variants"][0]["train_epochs"] == 3

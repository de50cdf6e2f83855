"""``[data] max_test``: a stratified, seeded, order-keeping subsample of the test split, taken where the data is
loaded (lazy splits stay lazy and only the chosen rows are read), validated before any training."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from audit.cli import main
from audit.config import DataConfig, InputConfig
from audit.config.bounds import LIMITS
from audit.config.load import config_from_data
from audit.core.errors import UsageError
from audit.data.rows import Rows
from audit.data.sources import load_data
from audit.data.sources.folder import FolderRows
from audit.data.subsample import TEST_SUBSAMPLE_OFFSET, class_quotas, stratified_subsample, subsample_test
from audit.methods.seeding import STREAMS, TEST_SUBSAMPLE


def load(d=".", seed=0, **kw):
    return load_data(DataConfig(**kw), InputConfig(), Path(d), seed=seed)


@pytest.fixture(scope="module")
def full():
    return load()


def _rows_of(sub, full_x) -> np.ndarray:
    """Index of each subsampled test row in the full split (rows of the digits are unique enough to match)."""
    flat_full, flat_sub = full_x.flatten(1), sub.flatten(1)
    return np.array([int(torch.nonzero((flat_full == r).all(1))[0, 0]) for r in flat_sub])


def test_the_subsample_keeps_every_class_share_within_one_point(full):
    s = load(max_test=200)
    assert s.y_test.shape == (200,) and s.x_test.shape[0] == 200 and s.n_test_full == len(full.y_test) == 450
    share_full = torch.bincount(full.y_test, minlength=10).double() / len(full.y_test)
    share_sub = torch.bincount(s.y_test, minlength=10).double() / 200
    assert float((share_full - share_sub).abs().max()) <= 0.01
    assert "200 of 450 test points" in s.preprocessing["test_subsample"]
    assert s.x_train.shape == full.x_train.shape and torch.equal(s.y_train, full.y_train)  # train untouched


def test_the_subsample_is_a_subset_in_the_original_order(full):
    s = load(max_test=120)
    rows = _rows_of(s.x_test, full.x_test)
    assert (np.diff(rows) > 0).all()   # strictly increasing: a subset, in order, no repeats
    assert torch.equal(full.y_test[torch.from_numpy(rows)], s.y_test)
    idx = stratified_subsample(full.y_test.numpy(), 120, 0 + TEST_SUBSAMPLE_OFFSET)
    assert np.array_equal(idx, rows)   # the data room's draw is the test_subsample stream's


def test_the_same_seed_gives_the_same_points_and_another_seed_others():
    a, b, c = load(max_test=100, seed=3), load(max_test=100, seed=3), load(max_test=100, seed=4)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test) and a.sha256() == b.sha256()
    assert not torch.equal(a.x_test, c.x_test)
    assert torch.equal(torch.bincount(a.y_test), torch.bincount(c.y_test))  # same quotas, other points


def test_no_subsample_when_max_test_is_unset_or_not_smaller():
    for kw in ({}, {"max_test": 450}, {"max_test": 10_000}):
        s = load(**kw)
        assert len(s.y_test) == 450 and s.n_test_full is None and "test_subsample" not in s.preprocessing


def test_quotas_are_proportional_sum_to_n_and_keep_every_class():
    counts = np.array([1000, 10, 1, 300])
    q = class_quotas(counts, 50)
    assert q.sum() == 50 and (q >= 1).all() and (q <= counts).all()
    assert q[0] > q[3] > q[1] >= q[2] == 1
    assert class_quotas(np.array([5, 5]), 10).tolist() == [5, 5]
    assert class_quotas(np.array([45, 46, 44]), 3).tolist() == [1, 1, 1]
    y = np.repeat(np.arange(4), counts)
    idx = stratified_subsample(y, 50, 0)
    assert len(np.unique(idx)) == 50 and (np.diff(idx) > 0).all()
    assert np.bincount(y[idx], minlength=4).tolist() == q.tolist()


def test_the_stream_is_registered_with_the_data_rooms_offset():
    assert TEST_SUBSAMPLE in STREAMS and TEST_SUBSAMPLE.seed(5) == 5 + TEST_SUBSAMPLE_OFFSET
    assert len({s.name for s in STREAMS}) == len(STREAMS)


@pytest.mark.parametrize("value, match", [
    (1, r"data\.max_test: 1 test points cannot hold two classes"),
    (0, r"data\.max_test: 0 "), (-5, r"data\.max_test: -5 "),
    (2_000_000, r"data\.max_test: 2,000,000 is above advaudit's bound of 1,000,000"),
    (3.5, r"data\.max_test: expected an integer"), ("all", r"data\.max_test: expected an integer"),
    (True, r"data\.max_test: expected an integer"),
])
def test_bad_values_are_refused_when_the_config_loads(value, match):
    with pytest.raises(UsageError, match=match):
        config_from_data({"data": {"max_test": value}}, Path("."))
    assert LIMITS["data.max_test"] == 1_000_000


def test_declared_classes_are_checked_at_load_and_found_ones_at_data_load():
    with pytest.raises(UsageError, match=r"data\.max_test: 3 test points cannot hold every one of the 4 declared"):
        config_from_data({"data": {"max_test": 3, "num_classes": 4}}, Path("."))
    with pytest.raises(UsageError, match=r"data\.max_test: 9 test points cannot hold every one of the 10 classes"):
        load(max_test=9)
    assert len(load(max_test=10).y_test.unique()) == 10   # one point per class


def test_a_bad_max_test_exits_2_before_any_training(tmp_path, capsys):
    cfg = tmp_path / "advaudit.toml"
    cfg.write_text('[data]\nsource = "digits"\nmax_test = 7\n[training]\nepochs = 1\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "data.max_test: 7 test points" in err and "10 classes" in err
    assert not out.exists()


def _folder_tree(root: Path, digits, per_class: int = 6) -> None:
    from PIL import Image
    for split, x, y in (("train", digits.x_train, digits.y_train), ("test", digits.x_test, digits.y_test)):
        for c in range(3):
            for i, img in enumerate(x[y == c][:per_class * (2 if split == "train" else 1)].numpy()):
                folder = root / split / f"class_{c}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray((img[0] * 255).round().astype(np.uint8)).save(folder / f"{i}.png")


def test_a_lazy_folder_split_stays_lazy_and_only_the_sampled_images_are_read(tmp_path, digits, monkeypatch):
    _folder_tree(tmp_path, digits)                      # 3 classes x 6 test images
    whole = load(tmp_path, source="folder", path=".", channels=1)
    read: dict[int, set[int]] = {}
    original = FolderRows.read

    def spy(self, indices):
        read.setdefault(id(self), set()).update(int(i) for i in indices)
        return original(self, indices)

    monkeypatch.setattr(FolderRows, "read", spy)
    s = load(tmp_path, source="folder", path=".", channels=1, max_test=6)
    assert isinstance(s.x_test, Rows) and s.lazy and s.x_test.shape == (6, 1, 8, 8) and s.n_test_full == 18
    assert torch.bincount(s.y_test).tolist() == [2, 2, 2]
    chosen = set(s.x_test.indices.tolist())             # SubsetRows: the rows of the full test folder it keeps
    test_reads = read[id(s.x_test.base)]
    assert test_reads <= chosen and len(test_reads) == 6  # the pre-flight scan read only the subsample
    rows = np.array(sorted(chosen))
    assert torch.equal(s.x_test[:], whole.x_test[rows]) and torch.equal(s.y_test, whole.y_test[rows])


def test_a_lazy_npy_split_is_subsampled_without_reading_it_whole(tmp_path, digits):
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.save(tmp_path / f"{name}.npy", getattr(digits, name).numpy())
    s = load(tmp_path, source="npy", path=".", max_test=50)
    assert isinstance(s.x_test, Rows) and s.x_test.shape[0] == 50 and s.n_test_full == 450
    dense = load(max_test=50)   # the same seed and labels: the same points as the built-in split
    assert torch.equal(s.x_test[:], dense.x_test) and torch.equal(s.y_test, dense.y_test)


def test_subsample_test_is_idempotent_and_applies_to_in_memory_splits(digits):
    once = subsample_test(digits, 90, 0)
    assert subsample_test(once, 90, 0) is once and once.n_test_full == 450
    assert subsample_test(digits, None, 0) is digits and subsample_test(digits, 450, 0) is digits
    assert torch.equal(once.y_test, load(max_test=90).y_test)   # the same draw as the loaded source's


def test_the_pipeline_subsamples_in_memory_data_too(digits):
    """``audit.run(data=...)`` and a Splits handed to the pipeline get the same subsample as the config's source
    (needs the pipeline to apply ``subsample_test`` to data handed in)."""
    from audit.config import AuditConfig
    from audit.engine.pipeline import prepare
    config = dataclasses.replace(AuditConfig(), data=DataConfig(max_test=100))
    prepared = prepare(config, data=digits)
    try:
        data = prepared.setup.data
    finally:
        prepared.executor.close()
    assert data.y_test.shape == (100,) and data.n_test_full == 450
    assert torch.equal(data.x_test, load(max_test=100).x_test)

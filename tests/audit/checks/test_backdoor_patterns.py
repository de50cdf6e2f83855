"""Class-level backdoor flags on real pattern backdoors (issue 27: the flags looked inverted on an all-to-all
backdoor).

Fixtures: digits28 (the 28x28 builtin, seed 0: 1347 training / 450 test rows, 10 classes of 125-139 rows), the
trigger ART's ``add_pattern_bd`` (``add_trigger``), a SmallCNN (width 8) trained 10 epochs (batch 32, lr 3e-3,
seed 0) on each training split, the screen run on its penultimate activations with the clean test split held out:

- all-to-all: every class t receives triggered rows of class t-1, relabelled t, 10% of each class after
  poisoning (149 of the 1347 rows);
- all-to-one: class 0 receives triggered rows drawn from the nine other classes, 10% of class 0 (15 rows);
- clean: no poison.

Measured when written: all-to-all class recall 1.0 (every class poisoned, none clean to flag), rows recall 0.99
at precision 0.73; all-to-one class recall 1.0 at class false-positive rate 0.0, rows recall 1.0 at precision
0.18; clean: no class flagged, 4.1% of rows flagged. Each model trains once per module, in the first test that
needs it (10-20 s on one shared thread); the tests are marked slow.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.config import BackdoorConfig
from audit.methods.backdoor import add_trigger, class_rates, poison_plan, screen

RATE = 0.1
EPOCHS = 10


def _trained(pattern: str | None):
    """The screen of a SmallCNN trained on digits28 with ``pattern`` planted (None: clean), and the truth."""
    from attacks.recipes import Recipe
    from attacks.training import train
    from audit.data.sources import BUILTIN
    from audit.models.embeddings import penultimate
    from audit.models.reference import SmallCNN
    s = BUILTIN["digits28"](seed=0)
    x, y = s.x_train.numpy().copy(), s.y_train.numpy().copy()
    truth = np.zeros(len(y), dtype=bool)
    if pattern:
        rows, new = poison_plan(y, s.num_classes, RATE, seed=0, pattern=pattern, target=0)
        x[rows] = add_trigger(x[rows], "image", 1.0)
        y[rows] = new
        truth[rows] = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # small convolutions: one thread is faster than two on a shared box
    try:
        torch.manual_seed(0)
        model = SmallCNN(image_size=28, width=8)
        train(model, torch.from_numpy(x), torch.from_numpy(y), Recipe(epochs=EPOCHS, batch_size=32, lr=3e-3, seed=0))
    finally:
        torch.set_num_threads(threads)
    model.eval()
    cpu = torch.device("cpu")
    e = penultimate(model, torch.from_numpy(x), device=cpu).numpy()
    held = penultimate(model, s.x_test, device=cpu).numpy()
    result = screen(e, y, BackdoorConfig(), seed=0, heldout=(held, s.y_test.numpy()))
    return result, y, truth


@pytest.fixture(scope="module")
def screened():
    cache: dict = {}

    def get(pattern: str | None):
        if pattern not in cache:
            cache[pattern] = _trained(pattern)
        return cache[pattern]
    return get


def _class_rates(result, y, truth):
    poisoned = sorted(set(y[truth].tolist()))
    return class_rates(result.suspicious_classes, poisoned, sorted(set(y.tolist()))), poisoned


@pytest.mark.slow
def test_an_all_to_all_backdoor_flags_the_poisoned_classes_on_their_poisoned_rows(screened):
    result, y, truth = screened("all-to-all")
    r, poisoned = _class_rates(result, y, truth)
    assert poisoned == list(range(10))                    # every class is poisoned: nothing to compare with
    assert r["recall"] >= 0.8, result.classes
    # the flags are not inverted: the suspicious clusters are the planted rows, not a clean style of the class
    assert truth[result.clustered].mean() >= 0.8
    assert result.clustered[truth].mean() >= 0.7
    by_cluster = [c for c in result.classes if "cluster" in c["evidence"]]
    assert len(by_cluster) >= 8 and all(c["small_cluster_share"] <= 0.25 for c in by_cluster)
    assert result.flagged[truth].mean() >= 0.9 and truth[result.flagged].mean() >= 0.5


@pytest.mark.slow
def test_an_all_to_one_backdoor_flags_its_target_class_and_no_other(screened):
    result, y, truth = screened("all-to-one")
    r, poisoned = _class_rates(result, y, truth)
    assert poisoned == [0]
    assert r["recall"] >= 0.8 and r["false_positive_rate"] <= 0.1, result.classes
    assert result.suspicious_classes == [0]               # the poisoned class is the flagged one
    target = next(c for c in result.classes if c["class"] == 0)
    assert len(target["neighbour_classes"]) >= 3          # its odd rows sit among several source classes
    assert result.flagged[truth].mean() >= 0.8


@pytest.mark.slow
def test_clean_digits28_flag_no_class(screened):
    result, _, _ = screened(None)
    assert result.suspicious_classes == [], [c for c in result.classes if c["flagged"]]
    assert not result.clustered.any()
    assert result.flagged.mean() <= 0.1

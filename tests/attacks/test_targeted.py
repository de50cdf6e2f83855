"""Batched multi-target runs (attacks/targeted.py): every batching gives the verdict of running the (target,
restart) runs one after another (and the same points up to float noise), and a run stops once a lower-ranked run
broke its point."""
import pytest
import torch

import attacks.targeted as targeted
from attacks import ATTACKS


def _run(model, x, y, name, norm, eps, rows, monkeypatch):
    monkeypatch.setattr(targeted, "rows_per_batch", lambda n, like, max_rows=0: rows)
    settings = {"steps": 12, "n_targets": 3, "restarts": 2}
    if name == "apgd_t":
        settings["early_stop"] = True
    out = ATTACKS[name](model, x, y, eps=eps, norm=norm, generator=torch.Generator().manual_seed(5), **settings)
    with torch.no_grad():
        return out, model(out.x_adv).argmax(1) != y


@pytest.mark.parametrize("name", ["apgd_t", "fab_t"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.06), ("l2", 0.5)])
def test_every_batching_gives_the_one_run_at_a_time_result(trained_cnn, digits, name, norm, eps, monkeypatch):
    x, y = digits.x_test[:40], digits.y_test[:40]
    one, one_mask = _run(trained_cnn, x, y, name, norm, eps, 1, monkeypatch)        # each run alone, in rank order
    assert 0 < int(one_mask.sum()) < 40                                                # some points break, some not
    for rows in (17, 10**6):                                                           # odd batches; all at once
        out, mask = _run(trained_cnn, x, y, name, norm, eps, rows, monkeypatch)
        assert torch.equal(mask, one_mask)
        # the same points up to float noise: a batch's matmuls round differently, and once in a while that flips a
        # tie in one row's trajectory (seen: 1 row of 40, FAB-T L2), never the verdict
        same = (out.x_adv - one.x_adv).flatten(1).abs().amax(1) <= 1e-5
        assert float(same.float().mean()) >= 0.9


def test_a_run_stops_once_a_lower_ranked_run_broke_its_point(trained_cnn, digits, monkeypatch):
    x, y = digits.x_test[:40], digits.y_test[:40]
    one, _ = _run(trained_cnn, x, y, "apgd_t", "linf", 0.3, 1, monkeypatch)
    together, mask = _run(trained_cnn, x, y, "apgd_t", "linf", 0.3, 10**6, monkeypatch)
    assert bool(mask.all())                                                            # eps 0.3 breaks every point
    runs = 3 * 2 * 40
    assert together.example_passes < runs * 3                                          # most runs end in a few steps
    assert together.example_passes <= one.example_passes * 1.5


def test_runs_superseded_marks_only_higher_ranks_of_broken_points():
    runs = targeted.Runs(point=torch.tensor([0, 1, 0, 1, 0]), rank=torch.tensor([0, 0, 1, 1, 2]),
                         restart=torch.zeros(5, dtype=torch.long), target=torch.zeros(5, dtype=torch.long),
                         raw=torch.zeros(5, 1), points=2)
    done = torch.tensor([False, False, True, False, False])                            # point 0 broken by rank 1
    assert runs.superseded(done).tolist() == [False, False, False, False, True]

"""Defence recipes: every recipe trains, counts its forward+backward passes, and the FGSM-RS guard stops on
catastrophic overfitting and restores the best epoch."""
from __future__ import annotations

import pytest
import torch

import attacks.training as training
from attacks.base import Ball
from attacks.recipes import Recipe
from attacks.trades import trades_perturb
from attacks.training import Adversary, Regularisers, train
from audit.models.reference import SmallCNN

N = 256


@pytest.fixture
def small(digits):
    return digits.x_train[:N], digits.y_train[:N]


@pytest.mark.parametrize("adversary,regularised,passes_per_example", [
    (None, {}, 1),
    (Adversary("pgd", 0.1, steps=3), {}, 4),
    (Adversary("trades", 0.1, steps=3), {}, 5),
    (None, dict(weight_decay=1e-3, reg=Regularisers(l1=1e-5, label_smoothing=0.1, mixup_alpha=0.4, input_noise=0.05,
                                                    grad_clip=1.0)), 1),
])
def test_each_recipe_trains_and_counts_its_passes(small, adversary, regularised, passes_per_example):
    x, y = small
    torch.manual_seed(0)
    model = SmallCNN()
    before = [p.detach().clone() for p in model.parameters()]
    stats = train(model, x, y, Recipe(epochs=2, batch_size=64, lr=2e-3, seed=0, **regularised), adversary)
    assert stats.example_passes == 2 * N * passes_per_example
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=False))
    assert not model.training


def test_trades_perturbation_stays_in_the_ball_and_raises_the_kl(trained_cnn, eval_batch):
    x, _ = eval_batch
    out = trades_perturb(trained_cnn, x, Ball(0.1), steps=5, generator=torch.Generator().manual_seed(0))
    assert float((out.x_adv - x).abs().max()) <= 0.1 + 1e-6
    assert float(out.x_adv.min()) >= 0 and float(out.x_adv.max()) <= 1
    with torch.no_grad():
        p = torch.softmax(trained_cnn(x), 1)
        kl = torch.nn.functional.kl_div(torch.log_softmax(trained_cnn(out.x_adv), 1), p, reduction="batchmean")
    assert float(kl) > 0.05


def test_the_overfitting_guard_restores_the_best_epoch(small, monkeypatch):
    x, y = small
    accuracies = iter([0.5, 0.6, 0.1, 0.1])  # a collapse after the second epoch
    snapshots = []

    def fake(model, *args):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return 0.9, next(accuracies)
    monkeypatch.setattr(training, "_monitor", fake)
    torch.manual_seed(0)
    model = SmallCNN()
    stats = train(model, x, y, Recipe(epochs=4, seed=0), Adversary("fgsm_rs", 0.1))
    assert stats.epochs == 3 and "catastrophic overfitting" in stats.stopped_early
    best = snapshots[1]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("method", ["fgsm", "fgsm_rs"])
def test_both_fgsm_methods_are_guarded(small, monkeypatch, method):
    x, y = small
    accuracies = iter([0.5, 0.1])
    monkeypatch.setattr(training, "_monitor", lambda *a: (0.9, next(accuracies)))
    stats = train(SmallCNN(), x, y, Recipe(epochs=3, seed=0), Adversary(method, 0.1))
    assert stats.epochs == 2 and stats.selected_epoch == 1 and stats.guard_history == (0.5, 0.1)


def test_select_best_keeps_the_epoch_with_the_best_held_out_robust_accuracy(small, monkeypatch):
    x, y = small
    scores = iter([0.2, 0.7, 0.4])
    kept = []

    def fake(model, *args):
        kept.append({k: v.clone() for k, v in model.state_dict().items()})
        return 0.9, next(scores)
    monkeypatch.setattr(training, "_monitor", fake)
    model = SmallCNN()
    stats = train(model, x, y, Recipe(epochs=3, select="best", holdout=32, seed=0), Adversary("pgd", 0.1, steps=2))
    assert stats.selected_epoch == 2 and stats.monitor == "held-out (32 rows)"
    assert all(torch.equal(v, kept[1][k]) for k, v in model.state_dict().items())
    assert [h.monitor_robust for h in stats.history] == [0.2, 0.7, 0.4]


def test_the_eps_warms_up_linearly_and_the_learning_rate_follows_its_schedule():
    r = Recipe(epochs=10, warmup_epochs=4, schedule="onecycle", lr=1.0)
    per_epoch = 5
    assert r.eps_factor(0, per_epoch) == pytest.approx(1 / 20) and r.eps_factor(19, per_epoch) == 1.0
    assert r.eps_factor(9, per_epoch) == pytest.approx(0.5) and r.eps_factor(40, per_epoch) == 1.0
    assert r.lr_factor(0, 100) < 0.01 and r.lr_factor(40, 100) == pytest.approx(1.0)
    assert r.lr_factor(70, 100) == pytest.approx(0.5) and r.lr_factor(100, 100) == 0.0
    p = Recipe(epochs=10, schedule="piecewise")
    assert (p.lr_factor(10, 100), p.lr_factor(60, 100), p.lr_factor(90, 100)) == (1.0, 0.1, 0.01)


def test_warm_up_grows_the_training_eps_epoch_by_epoch(small):
    x, y = small
    stats = train(SmallCNN(), x, y, Recipe(epochs=3, warmup_epochs=2, batch_size=128, seed=0),
                  Adversary("pgd", 0.3, steps=2))
    assert [round(h.eps, 4) for h in stats.history] == [0.15, 0.3, 0.3]


def test_a_diverging_run_stops_and_is_marked(small):
    x, y = small
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        model[1].weight.fill_(1e38)  # the first step overflows: what a far too large learning rate does
    stats = train(model, x, y, Recipe(epochs=3, seed=0))
    assert stats.diverged and "non-finite" in stats.stopped_early and stats.history[-1].loss is None

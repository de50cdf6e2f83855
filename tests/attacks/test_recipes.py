"""Defence recipes: every recipe trains, counts its forward+backward passes, and the FGSM-RS guard stops on
catastrophic overfitting and restores the best epoch."""
from __future__ import annotations

import pytest
import torch

import attacks.training as training
from attacks.trades import trades_perturb
from attacks.training import Adversary, Regularisers, train
from audit.models.reference import SmallCNN

N = 256


@pytest.fixture
def small(digits):
    return digits.x_train[:N], digits.y_train[:N]


@pytest.mark.parametrize("adversary,reg,passes_per_example", [
    (None, Regularisers(), 1),
    (Adversary("pgd", 0.1, steps=3), Regularisers(), 4),
    (Adversary("trades", 0.1, steps=3), Regularisers(), 5),
    (None, Regularisers(weight_decay=1e-3, l1=1e-5, label_smoothing=0.1, mixup_alpha=0.4, input_noise=0.05,
                        grad_clip=1.0), 1),
])
def test_each_recipe_trains_and_counts_its_passes(small, adversary, reg, passes_per_example):
    x, y = small
    torch.manual_seed(0)
    model = SmallCNN()
    before = [p.detach().clone() for p in model.parameters()]
    stats = train(model, x, y, epochs=2, batch_size=64, lr=2e-3, adversary=adversary, reg=reg, seed=0)
    assert stats.example_passes == 2 * N * passes_per_example
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.training


def test_trades_perturbation_stays_in_the_ball_and_raises_the_kl(trained_cnn, eval_batch):
    x, _ = eval_batch
    out = trades_perturb(trained_cnn, x, eps=0.1, steps=5, generator=torch.Generator().manual_seed(0))
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
        return next(accuracies)
    monkeypatch.setattr(training, "_pgd_accuracy", fake)
    torch.manual_seed(0)
    model = SmallCNN()
    stats = train(model, x, y, epochs=4, adversary=Adversary("fgsm_rs", 0.1), seed=0)
    assert stats.epochs == 3 and "catastrophic overfitting" in stats.stopped_early
    best = snapshots[1]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())

"""The digits28 fixtures of tests/fixtures_hard.py have the property each is named for, and their checkpoints load
through ``[model]`` (factory + weights, no unpickling) to the same model."""
from __future__ import annotations

import pytest
import torch

from audit.config.load import config_from_data, load_config
from audit.config.sections import ModelConfig
from audit.models.loading import load_user_model
from tests.fixtures_hard import (
    CHANCE_LOSS,
    QuantisedInput,
    accuracy,
    attacked_accuracy,
    digits28,
    save_checkpoint,
    write_config,
)

N_ATTACKED = 200   # test points attacked per check (the first ones of the split: every class is among them)


@pytest.fixture(scope="module")
def test28():
    d = digits28()
    assert d.name == "digits28" and d.x_test.shape == (450, 1, 28, 28) and d.x_train.shape[0] == 1347
    return d.x_test, d.y_test


def _loads_back(hard, tmp_path):
    """The [model] table loads the checkpoint (weights_only / safetensors) to a model with the same logits."""
    x = digits28().x_test[:32]
    for table in (hard.model_table(), save_checkpoint(hard.model, tmp_path / f"{hard.name}.pt")):
        loaded = load_user_model(ModelConfig(**table), None)
        assert loaded.pretrained
        with torch.no_grad():
            assert torch.allclose(loaded.module.eval()(x), hard.model(x), atol=1e-6)
    config = config_from_data(hard.config(attacks={"preset": "quick"}), tmp_path)
    assert config.data.source == "digits28" and config.model.weights == str(hard.checkpoint)
    assert load_config(write_config(hard.config(), tmp_path / "advaudit.toml")).model == config.model


@pytest.mark.slow
def test_natural28_is_accurate_and_not_robust(natural28, test28, tmp_path):
    x, y = test28
    assert accuracy(natural28.model, x, y) >= 0.95
    assert attacked_accuracy(natural28.model, x[:N_ATTACKED], y[:N_ATTACKED], "pgd", steps=10) <= 0.2
    assert natural28.losses[-1] < 0.2
    _loads_back(natural28, tmp_path)


@pytest.mark.slow
def test_fgsm_overfit28_resists_fgsm_but_not_pgd(fgsm_overfit28, test28, tmp_path):
    """Catastrophic overfitting: FGSM accuracy near clean, PGD-20 accuracy near zero (both at eps 0.3)."""
    x, y = test28
    model = fgsm_overfit28.model
    clean = accuracy(model, x, y)
    fgsm = attacked_accuracy(model, x, y, "fgsm")
    pgd = attacked_accuracy(model, x[:N_ATTACKED], y[:N_ATTACKED], "pgd", steps=20)
    assert clean >= 0.85 and fgsm >= 0.7 and clean - fgsm <= 0.15, (clean, fgsm)
    assert pgd <= 0.2, pgd
    _loads_back(fgsm_overfit28, tmp_path)


@pytest.mark.slow
def test_masked28_stops_gradient_attacks_but_not_square(masked28, natural28, test28, tmp_path):
    x, y = test28
    model = masked28.model
    assert isinstance(model, QuantisedInput) and model.inner is natural28.model
    probe = x[:8].clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(model(probe), y[:8]).backward()
    assert probe.grad is not None and float(probe.grad.abs().max()) == 0.0   # a flat loss to every gradient
    assert accuracy(model, x, y) >= 0.95
    assert attacked_accuracy(model, x[:N_ATTACKED], y[:N_ATTACKED], "pgd", steps=20) >= 0.9
    assert attacked_accuracy(model, x[:100], y[:100], "square", queries=1000) <= 0.2
    _loads_back(masked28, tmp_path)


def test_undertrained28_does_not_learn(undertrained28, test28, tmp_path):
    x, y = test28
    assert undertrained28.losses and all(abs(loss - CHANCE_LOSS) < 0.05 for loss in undertrained28.losses)
    assert accuracy(undertrained28.model, x, y) <= 0.3
    assert undertrained28.training == {"epochs": 1, "batch_size": 64, "lr": 1e-5}
    _loads_back(undertrained28, tmp_path)

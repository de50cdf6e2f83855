"""Calibration (temperature scaling lowers ECE of an overconfident model) and corruption robustness."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.checks.calibration import Calibration
from audit.checks.corruptions import Corruptions
from audit.config import AuditConfig
from audit.config.policy import load_policy
from audit.engine.context import RunSetup, Variant, make_context
from audit.methods.calibration import calibration_metrics, fit_temperature
from audit.methods.corruptions import IMAGE, SEVERITIES, TABULAR, corrupt


class Scaled(torch.nn.Module):
    """Logits multiplied by a factor: > 1 makes a model overconfident without changing its predictions."""

    def __init__(self, model, factor):
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x):
        return self.model(x) * self.factor


def context(digits, **models):
    setup = RunSetup(config=AuditConfig(), policy=load_policy("default"), data=digits, device=torch.device("cpu"))
    return make_context(setup, {name: Variant(name, name, m, None, None) for name, m in models.items()})


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model(digits, trained_cnn):
    torch.manual_seed(0)
    ctx = context(digits, baseline=Scaled(trained_cnn, 6.0))
    m = Calibration().measure(ctx, "baseline")
    assert m.metrics["temperature"] > 2  # it learns to undo the factor
    assert m.metrics["ece_temperature"] < m.metrics["ece"] - 0.005
    assert m.details.fitted.startswith("2-fold cross-fitting")
    assert m.metrics["accuracy"] == pytest.approx(float((trained_cnn(digits.x_test).argmax(1) == digits.y_test)
                                                        .float().mean()), abs=1e-6)


def test_metrics_and_temperature_on_synthetic_logits():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (4000,), generator=g)
    logits = torch.randn(4000, 5, generator=g) + 2.0 * torch.nn.functional.one_hot(labels, 5)
    assert fit_temperature(logits * 3, labels) == pytest.approx(3 * fit_temperature(logits, labels), rel=0.05)
    probs = torch.softmax(logits, 1).numpy()
    m = calibration_metrics(probs, labels.numpy())
    assert 0 <= m["ece"] <= m["mce"] <= 1 and m["brier"] > 0 and m["nll"] > 0


@pytest.mark.parametrize("name", list(IMAGE))
def test_image_corruptions_stay_in_range_and_grow_with_severity(digits, name):
    x = digits.x_test[:64]
    dist = []
    for s in SEVERITIES:
        out = corrupt(name, x, s, (0.0, 1.0), "image", torch.Generator().manual_seed(0))
        assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
        dist.append(float((out - x).abs().mean()))
    assert dist[-1] > dist[0] > 0


@pytest.mark.parametrize("name", list(TABULAR))
def test_tabular_corruptions_respect_the_bounds(name):
    x = torch.randn(50, 4)
    lo, hi = torch.full((4,), -2.0), torch.full((4,), 2.0)
    out = corrupt(name, x.clamp(-2, 2), 5, (lo, hi), "tabular", torch.Generator().manual_seed(0))
    assert bool((out >= lo).all() and (out <= hi).all()) and not torch.equal(out, x.clamp(-2, 2))


def test_corruption_error_of_the_baseline_is_one_and_accuracy_falls_with_severity(digits, trained_cnn):
    ctx = context(digits, baseline=trained_cnn)
    m = Corruptions().measure(ctx, "baseline")
    assert m.metrics["mce"] == pytest.approx(1.0)
    acc = m.details.accuracy["gaussian_noise"]
    assert acc["1"] > acc["5"]


def test_ood_scores_separate_noise_from_digits_and_use_the_users_set(digits, trained_cnn, tmp_path):
    import dataclasses

    from audit.checks.ood import Ood
    from audit.data.sources.npz import load_ood
    np.savez(tmp_path / "ood.npz", x=np.random.default_rng(0).random((100, 1, 8, 8), dtype=np.float32))
    data = dataclasses.replace(digits, x_ood=load_ood(tmp_path / "ood.npz", digits.input_shape))
    ctx = context(data, baseline=trained_cnn)
    m = Ood().measure(ctx, "baseline")
    assert set(m.details.table) == {"uniform_noise", "pixel_shuffled", "user_supplied"}
    assert m.metrics["auroc_msp_uniform_noise"] > 0.9
    assert 0.5 < m.metrics["auroc_msp_min"] <= 1.0


def test_auroc_and_fpr95_on_known_score_distributions():
    from audit.methods.ood import auroc_fpr95
    rng = np.random.default_rng(0)
    auroc, fpr = auroc_fpr95(rng.normal(2, 1, 20000), rng.normal(0, 1, 20000))
    assert auroc == pytest.approx(0.921, abs=0.01)  # Phi(2 / sqrt(2))
    assert fpr == pytest.approx(0.361, abs=0.02)    # P(N(0,1) > 2 - 1.645)
    assert auroc_fpr95(np.ones(10), np.zeros(10)) == (1.0, 0.0)

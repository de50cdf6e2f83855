"""Training health: a collapsed or diverged variant fails with its cause and a remedy, is never "best", and a
collapsed candidate is NO-GO; healthy training passes; robust overfitting is named."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from attacks.training import EpochRecord, TrainStats
from audit.checks.training_health import TrainingHealth, conditions
from audit.config import AuditConfig
from audit.config.policy import load_policy
from audit.engine.context import RunSetup, Variant, make_context


class Constant(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(x.shape[0], 10) + self.w
        out[:, 3] = 1.0
        return out


def stats(**kw):
    base = dict(seconds=1.0, epochs=3, example_passes=10, selected_epoch=3,
                history=tuple(EpochRecord(1.0, 0.1, 0.9, r) for r in (0.5, 0.6, 0.62)))
    return TrainStats(**{**base, **kw})


def context(digits, model, st):
    setup = RunSetup(config=AuditConfig(), policy=load_policy("default"), data=digits, device=torch.device("cpu"))
    return make_context(setup, {"v": Variant("v", "v", model, None, st)})


def test_a_constant_predictor_is_a_collapse_with_a_remedy(digits):
    m = TrainingHealth().measure(context(digits, Constant().eval(), stats()), "v")
    collapse = next(c for c in m.details.conditions if c.name == "collapse")
    assert collapse.status == "fail" and "warm-up" in collapse.remedy and m.metrics["training_failures"] == 1
    assert m.summary.startswith("training failed: collapse")


def test_a_healthy_model_passes_and_a_supplied_one_is_skipped(digits, trained_cnn):
    m = TrainingHealth().measure(context(digits, trained_cnn, stats()), "v")
    assert m.metrics["training_failures"] == 0 and m.at_best is None, m.summary
    skipped = TrainingHealth().measure(context(digits, trained_cnn, None), "v")
    assert skipped.skipped and "C16" in skipped.skipped


def test_divergence_and_robust_overfitting_are_named():
    y = np.arange(100) % 10
    ok, pred = np.ones(100, bool), y.copy()
    diverged = conditions(stats(diverged=True, stopped_early="the training loss became non-finite at epoch 2"),
                          ok, pred, y, 10, "pgd")
    assert next(c for c in diverged if c.name == "divergence").status == "fail"
    peaked = stats(history=tuple(EpochRecord(1.0, 0.1, 0.9, r) for r in (0.3, 0.7, 0.4)))
    last = next(c for c in conditions(peaked, ok, pred, y, 10, "pgd") if c.name == "robust overfitting")
    assert last.status == "warn" and "peaked at 70.0%" in last.evidence
    kept = dataclasses.replace(peaked, selected_epoch=2)
    assert next(c for c in conditions(kept, ok, pred, y, 10, "pgd") if c.name == "robust overfitting").status \
        == "pass"


@pytest.mark.slow
def test_a_collapsed_candidate_is_no_go_and_never_best(digits):
    """PGD training at eps 0.6 (beyond half the [0, 1] range: every input can be made mid-grey) cannot learn."""
    from audit.config import AttackConfig, DefenceConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    cfg = AuditConfig(checks=("clean_accuracy", "training_health", "robustness"), candidate="at",
                      training=TrainingConfig(epochs=4),
                      attacks=AttackConfig(preset="quick", eps=(0.05, 0.1), pgd_steps=3),
                      defences=(DefenceConfig(name="at", method="pgd", eps=0.6, steps=3, warmup_epochs=0),))
    res = run_audit(cfg, data=digits)
    f = res.finding("training_health", "at")
    assert f.status.value == "fail" and "collapse" in f.summary, f.summary
    assert res.verdict.value == "no-go"
    assert not res.variant("at").best  # the baseline may not be "best" either: it fails the robustness threshold

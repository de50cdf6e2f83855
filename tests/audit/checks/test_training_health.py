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
    why = TrainingHealth().not_applicable_to(context(digits, trained_cnn, None), "v")
    assert "not trained by this audit" in why and "C16" in why


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


def not_learning(ok_share_class3: int = 5):
    """The reported run: 900 test points, 90 per class; class 3 recognised on 5 of its 90, the others on 70."""
    y = np.repeat(np.arange(10), 90)
    ok = np.zeros(900, bool)
    for c in range(10):
        ok[c * 90:c * 90 + (ok_share_class3 if c == 3 else 70)] = True
    pred = np.where(ok, y, (y + 1) % 10)
    return ok, pred, y


def test_a_run_that_does_not_learn_is_under_trained_not_converged():
    ok, pred, y = not_learning()
    flat = stats(history=tuple(EpochRecord(loss, 0.1, 0.7, None) for loss in (2.235, 2.24, 2.238)))
    conds = conditions(flat, ok, pred, y, 10, "pgd")
    under = next(c for c in conds if c.name == "under-training")
    assert under.status == "fail", under.evidence
    assert "2.235 -> 2.238" in under.evidence and "ln 10 = 2.303" in under.evidence
    assert "class 3 recognised on 5.6% of its 90 test points" in under.evidence
    assert all(w in under.remedy for w in ("train longer", "learning rate", "labels"))
    assert next(c for c in conds if c.name == "collapse").status == "pass"   # 71% clean: not a collapse


@pytest.mark.parametrize("case", ["loss", "class", "baseline"])
def test_each_under_training_sign_fails_on_its_own(case):
    ok, pred, y = not_learning(5 if case == "class" else 70)
    if case == "baseline":                                  # 40% clean where the baseline reaches 99%
        ok = np.zeros(900, bool)
        for c in range(10):
            ok[c * 90:c * 90 + 36] = True
    st = stats(history=tuple(EpochRecord(2.25 if case == "loss" else 0.4, 0.1, 0.7, None) for _ in range(3)))
    base = 0.99 if case == "baseline" else None
    under = next(c for c in conditions(st, ok, pred, y, 10, "none", base) if c.name == "under-training")
    assert under.status == "fail", under.evidence
    assert {"loss": "training loss", "class": "class 3", "baseline": "baseline's 99.0%"}[case] in under.evidence
    ok, pred, y = not_learning(70)                          # 78% clean, every class learned, loss 1.0
    fine = next(c for c in conditions(stats(), ok, pred, y, 10, "none", 0.8) if c.name == "under-training")
    assert fine.status == "pass", fine.evidence


def test_trades_loss_is_not_judged_against_chance():
    ok, pred, y = not_learning(70)
    st = stats(history=tuple(EpochRecord(2.4, 0.1, 0.7, None) for _ in range(3)))   # CE + beta * KL
    assert next(c for c in conditions(st, ok, pred, y, 10, "trades") if c.name == "under-training").status == "pass"


class NeverThree(torch.nn.Module):
    """A trained model that never predicts class 3."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x).clone()
        out[:, 3] = -1e4
        return out


def test_a_variant_that_never_learns_a_class_fails_training_health(digits, trained_cnn):
    m = TrainingHealth().measure(context(digits, NeverThree(trained_cnn).eval(), stats()), "v")
    assert m.metrics["training_failures"] == 1 and m.summary.startswith("training failed: under-training"), m.summary
    assert "class 3 recognised on 0.0%" in m.summary and "train longer" in m.summary

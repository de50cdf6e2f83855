"""The dry run's estimate is made of each enabled check's own ``cost`` hook, per variant in registry order and
then the run-scope ones, between the trainings and the fixed cost."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from audit.checks import CHECKS
from audit.config import AttackConfig, AuditConfig, DefenceConfig, LabelIssuesConfig
from audit.engine.dryrun import Costs, estimate

COSTS = Costs(train_row=1e-3, grad_row=2e-4, forward_row=1e-4, small_forward_row=5e-4, corruption_call=0.5,
              art_grad_row=3e-4, art_query_row=4e-4)


def ctx_for(config):
    data = SimpleNamespace(x_train=torch.zeros(200, 1, 8, 8), x_test=torch.zeros(50, 1, 8, 8))
    return SimpleNamespace(config=config, data=data, user_model=None, setup=SimpleNamespace(trainable=None))


def test_the_stages_come_in_the_runs_order():
    config = AuditConfig(defences=(DefenceConfig(name="at", method="pgd", eps=0.1),), candidate="at",
                         attacks=AttackConfig(preset="quick"), checks=tuple(CHECKS),
                         label_issues=LabelIssuesConfig(folds=3, retrain_cleaned=True))
    names = [s.name for s in estimate(ctx_for(config), COSTS)]
    per_variant = ["check robustness:{v}", "check certified:{v}", "check attack_validity:{v}",
                   "  validity probes (forward):{v}", "check art_agreement:{v}", "check calibration:{v}",
                   "check corruptions:{v}", "check ood:{v}"]
    expected = (["train baseline", "train at"] + [n.format(v="baseline") for n in per_variant]
                + [n.format(v="at") for n in per_variant[:5]] + ["  ART and native Square:at"]
                + [n.format(v="at") for n in per_variant[5:]]
                + ["check label_issues (3 folds + the self-test's 3)", "check backdoor (self-test training)",
                   "check retrain_cleaned", "libraries, cleanlab, reports, bundle"])
    assert names == expected


def test_a_disabled_check_costs_nothing_and_the_passes_follow_the_settings():
    few = AuditConfig(checks=("clean_accuracy", "robustness"), attacks=AttackConfig(preset="quick"))
    stages = {s.name: s for s in estimate(ctx_for(few), COSTS)}
    assert set(stages) == {"train baseline", "check robustness:baseline", "libraries, cleanlab, reports, bundle"}
    more = AuditConfig(checks=("robustness",), attacks=AttackConfig(preset="quick", pgd_steps=40))
    again = {s.name: s for s in estimate(ctx_for(more), COSTS)}
    assert again["check robustness:baseline"].fwd_bwd > stages["check robustness:baseline"].fwd_bwd
    assert stages["train baseline"].fwd_bwd == few.training.epochs * 200

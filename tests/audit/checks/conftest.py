"""One tiny seeded context shared by the per-check tests: 300 training and 120 test digits, a baseline trained for
a few epochs and a PGD-trained variant, the quick attack preset on a three-eps grid."""
from __future__ import annotations

import dataclasses

import pytest

from audit.config import AttackConfig, AuditConfig, DefenceConfig, LabelIssuesConfig, TrainingConfig
from audit.engine.pipeline import build_context, prepare

SMALL = AuditConfig(
    training=TrainingConfig(epochs=4), candidate="at",
    attacks=AttackConfig(preset="quick", eps=(0.05, 0.1, 0.2), pgd_steps=3, probe_points=32, square_queries=40,
                         square_points=8, art_crosscheck_points=32),
    defences=(DefenceConfig(name="at", method="pgd", eps=0.1, steps=2),),
    label_issues=LabelIssuesConfig(folds=2, epochs=2, method="proxy", selftest_flip_rate=0.0))


@pytest.fixture(scope="session")
def small_data(digits):
    return dataclasses.replace(digits, x_train=digits.x_train[:300], y_train=digits.y_train[:300],
                               x_test=digits.x_test[:120], y_test=digits.y_test[:120])


@pytest.fixture(scope="session")
def small_ctx(small_data):
    """The trained context (variants "baseline" and "at"); checks are measured on it directly."""
    return build_context(prepare(SMALL, data=small_data))

"""retrain_cleaned: opt-in, needs the label_issues check's flagged rows."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from audit.checks import CHECKS
from audit.checks.label_issues import LabelIssues
from audit.config import AuditConfig, LabelIssuesConfig


def test_it_requires_label_issues_and_is_off_unless_asked(small_ctx):
    check = CHECKS["retrain_cleaned"]
    assert check.needs() == (LabelIssues.id,)
    off = SimpleNamespace(config=AuditConfig(), can_train=True)
    assert "retrain_cleaned = true" in check.not_applicable(off)
    config = dataclasses.replace(AuditConfig(), label_issues=LabelIssuesConfig(retrain_cleaned=True))
    on = SimpleNamespace(config=config, can_train=True)
    assert check.not_applicable(on) == ""

"""The hooks the data checks give the report and triage.csv (instead of the renderers naming them): residual-risk
sentences and triage rows, on hand-made details."""
from __future__ import annotations

from types import SimpleNamespace

from audit.checks import CHECKS
from reports.triage_csv import COLUMNS


def finding(check_id, metrics, details=None):
    return SimpleNamespace(check=check_id, metrics=metrics, details=details)


def rows_of(check, details):
    rows = {}
    check.triage(details, lambda split, i: rows.setdefault((split, i), {}))
    return rows


def test_every_triage_column_is_in_the_csv_once():
    declared = [col for c in CHECKS.values() for col in c.triage_columns]
    assert len(declared) == len(set(declared)) and set(declared) <= set(COLUMNS)


def test_training_row_columns_come_before_test_row_columns():
    assert {c.triage_split for c in CHECKS.values()} <= {"train", "test"}
    split_of = {col: c.triage_split for c in CHECKS.values() for col in c.triage_columns}
    order = [split_of[col] for col in COLUMNS if col in split_of]
    assert "test" in order and order == sorted(order, key=lambda s: s == "test")


def test_label_issue_and_backdoor_residual_risk_sentences():
    li, bd = CHECKS["label_issues"], CHECKS["backdoor"]
    assert li.residual_risk(finding(li.id, {})) == ""
    assert li.residual_risk(finding(li.id, {"label_issue_rate": 0.034})).startswith("3.4% of training labels")
    plain = bd.residual_risk(finding(bd.id, {"flagged_rows": 7.0}, SimpleNamespace(selftest=None)))
    assert plain == "The backdoor screen flagged 7 training rows for review."
    test = SimpleNamespace(rate=0.1, detectors={"screen": SimpleNamespace(recall=0.8)})
    evidence = bd.residual_risk(finding(bd.id, {"flagged_rows": 7.0}, SimpleNamespace(selftest=test)))
    assert "found 80% of a planted 10% backdoor" in evidence


def test_leakage_rows_merge_the_test_rows_a_training_row_leaked_to():
    lk = CHECKS["leakage"]
    leak = lambda tr, te, d: SimpleNamespace(train_row=tr, test_row=te, distance=d, exact=d == 0,  # noqa: E731
                                             conflicting_label=False)
    rows = rows_of(lk, SimpleNamespace(flagged=[leak(3, 10, 0.5), leak(3, 11, 0.0)]))
    assert rows[("train", 3)] == {"leaked_to_test_rows": "10 11", "leak_distance": 0.0, "leak_exact": True}
    assert rows[("test", 10)]["leak_distance"] == 0.5 and rows[("test", 11)]["leak_exact"] is True


def test_backdoor_and_test_outlier_rows():
    bd, to = CHECKS["backdoor"], CHECKS["test_outliers"]
    rows = rows_of(bd, SimpleNamespace(flagged=[SimpleNamespace(row=4, ratio_z=3.1, spectral_z=0.2, clustered=True)]))
    assert rows == {("train", 4): {"backdoor_ratio_z": 3.1, "backdoor_spectral_z": 0.2, "backdoor_clustered": True}}
    assert rows_of(to, SimpleNamespace(flagged={"5": -2.0})) == {("test", 5): {"test_outlier_score": -2.0}}

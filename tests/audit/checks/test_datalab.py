"""datalab: cleanlab Datalab's issue types on the training split, and its rows of triage.csv."""
from __future__ import annotations

from audit.checks import CHECKS
from audit.checks.datalab import DatalabDetails, IssueType


def test_it_examines_the_training_rows_and_flags_only_rows_that_exist(small_ctx):
    m = CHECKS["datalab"].measure(small_ctx)
    n = small_ctx.data.y_train.shape[0]
    assert m.details.rows_examined == n and not m.details.subsampled
    for scores in m.details.flagged.values():
        assert all(0 <= int(i) < n for i in scores)


def test_triage_fills_only_its_declared_columns():
    check = CHECKS["datalab"]
    d = DatalabDetails(issue_types={"outlier": IssueType(1, 0.5, ())}, rows_examined=10, subsampled=False,
                       features="x", non_iid_p_value=None,
                       flagged={"outlier": {"3": 0.1}, "non_iid": {"4": 0.2}})
    rows = {}
    check.triage(d, lambda split, i: rows.setdefault((split, i), {}))
    assert rows == {("train", 3): {"outlier_score": 0.1}}   # non_iid has no column
    assert set(check.triage_columns) == {f"{t}_score" for t in ("outlier", "near_duplicate", "underperforming_group")}

"""test_outliers: test rows scoring below the training rows' own kNN quantile, and their triage.csv column."""
from __future__ import annotations

from audit.checks import CHECKS


def test_a_shifted_test_row_is_flagged_and_triaged(small_ctx):
    check = CHECKS["test_outliers"]
    m = check.measure(small_ctx)
    flagged = m.details.flagged
    n_test = small_ctx.data.y_test.shape[0]
    assert all(0 <= int(i) < n_test for i in flagged)
    assert m.details.quantile == small_ctx.config.test_outliers.quantile
    rows = {}
    check.triage(m.details, lambda split, i: rows.setdefault((split, i), {}))
    assert {k for k in rows} == {("test", int(i)) for i in flagged}
    assert all(set(r) == {"test_outlier_score"} for r in rows.values())

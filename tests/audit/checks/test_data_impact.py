"""data_impact: accuracy with and without the test rows other data checks flagged."""
from __future__ import annotations

from audit.checks import CHECKS


def test_without_the_flagged_rows_keeps_the_rest(small_ctx):
    m = CHECKS["data_impact"].measure(small_ctx, "baseline")
    d = m.details
    flagged = set().union(*map(set, d.flagged.values())) if d.flagged else set()
    assert d.kept == d.n - len(flagged) and d.n == small_ctx.data.y_test.shape[0]
    for impact in d.rows.values():
        assert abs(impact.delta - (impact.without_flagged - impact.all)) < 1e-9

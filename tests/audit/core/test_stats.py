import pytest

from audit.core.stats import wilson_interval


@pytest.mark.parametrize("k,n,lo,hi", [
    (0, 10, 0.0, 0.2775),      # textbook values (Newcombe 1998, Agresti & Coull 1998)
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
])
def test_wilson_matches_reference_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-4)


def test_wilson_narrows_with_more_data_and_contains_the_estimate():
    small, large = wilson_interval(30, 40), wilson_interval(750, 1000)
    assert small[1] - small[0] > large[1] - large[0]
    assert small[0] < 0.75 < small[1] and large[0] < 0.75 < large[1]
    assert wilson_interval(0, 0) == (0.0, 1.0)

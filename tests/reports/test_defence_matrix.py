"""The defence matrix: ECE per variant, the best variant under the policy, and the clean-vs-robust plot."""
import numpy as np
import pytest

from audit.core.stats import expected_calibration_error
from reports import FORMATS


def test_ece_is_zero_when_confidence_matches_accuracy_and_grows_with_overconfidence():
    rng = np.random.default_rng(0)
    conf = np.full(10_000, 0.7)
    calibrated = rng.random(10_000) < 0.7
    assert expected_calibration_error(conf, calibrated) < 0.02
    assert expected_calibration_error(np.full(10_000, 0.99), calibrated) == pytest.approx(0.29, abs=0.02)


def test_demo_marks_exactly_one_best_variant_and_it_meets_its_gates(demo_result):
    best = [v for v in demo_result.variants if v.best]
    assert len(best) == 1
    own = [f for f in demo_result.findings if f.variant == best[0].name and f.threshold]
    assert own and all(f.status.value in ("pass", "warn") for f in own)
    assert all(v.ece is not None and 0 <= v.ece <= 1 for v in demo_result.variants)


def test_report_shows_the_matrix_columns_and_the_tradeoff_plot(demo_result):
    html = FORMATS["html"][1](demo_result)
    assert ">ECE</th>" in html and "best under the policy" in html
    assert "Clean vs robust accuracy" in html and html.count("<svg") >= 2


def test_report_renders_calibration_corruption_and_ood_tables(demo_result):
    html = FORMATS["html"][1](demo_result)
    for text in ("ECE after temperature", "Accuracy under common corruptions", "pixelate", "jpeg",
                 "Out-of-distribution detection", "pixel shuffled", "Reliability of"):
        assert text in html, text

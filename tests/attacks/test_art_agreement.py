"""Our native FGSM/PGD against ART's FastGradientMethod/ProjectedGradientDescent on the same model and points.

Tolerance: FGSM is deterministic, so both must agree within 1 point; PGD is random-started, so ours must agree
within 4 points and never be weaker than ART's by more than 3 points (the same bound the default policy gates).
"""
import pytest

from audit.checks.art_agreement import compare_with_art

FGSM_TOL, PGD_TOL, WEAKER_TOL = 0.01, 0.04, 0.03


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.15])
def test_native_attacks_agree_with_art(trained_cnn, digits, eps):
    x, y = digits.x_test[:300], digits.y_test[:300]
    res = compare_with_art(trained_cnn, x, y, eps=eps, norm="linf", steps=20, clip=(0.0, 1.0), num_classes=10,
                           seed=0)
    assert abs(res["fgsm"]["shortfall"]) <= FGSM_TOL, res
    assert abs(res["pgd"]["shortfall"]) <= PGD_TOL, res
    assert res["pgd"]["shortfall"] <= WEAKER_TOL, res
    assert res["pgd"]["art"] < 0.95, "the attacks did nothing: the comparison would be vacuous"


def test_l2_attacks_agree_with_art(trained_cnn, digits):
    x, y = digits.x_test[:300], digits.y_test[:300]
    res = compare_with_art(trained_cnn, x, y, eps=1.0, norm="l2", steps=20, clip=(0.0, 1.0), num_classes=10, seed=0)
    assert abs(res["fgsm"]["shortfall"]) <= FGSM_TOL, res
    assert res["pgd"]["shortfall"] <= WEAKER_TOL, res

"""Leakage detector: exact and near copies found at the calibrated absolute threshold, labels that conflict,
blockwise distances equal to brute force, and the check's self-test on digits."""
import numpy as np
import pytest
import torch

from audit.methods.leakage import calibrated_threshold, find_leaks, jittered_copies, nearest


def test_blockwise_nearest_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(300, 20, generator=g), torch.rand(70, 20, generator=g)
    d, i = nearest(b, a, block=16)
    full = torch.cdist(b, a)
    assert np.allclose(d, full.min(1).values.numpy(), atol=1e-4)
    assert np.array_equal(i, full.argmin(1).numpy())
    d_self, i_self = nearest(a[:50], a, block=8, exclude_self=True)
    assert not np.any(i_self == np.arange(50))


@pytest.mark.parametrize("sigma", [0.0, 0.03, 0.05])
def test_jittered_digit_copies_are_found_at_the_calibrated_threshold(digits, sigma):
    xtr, xte = digits.x_train.flatten(1), digits.x_test.flatten(1)
    thr = calibrated_threshold(xtr, quantile=0.001, seed=0)
    copies, src = jittered_copies(xtr, 150, sigma, (0.0, 1.0), seed=1)
    leaks = find_leaks(xtr, digits.y_train, copies, digits.y_train[src], threshold=thr)
    assert leaks.flagged.mean() >= 0.95
    assert leaks.exact.all() == (sigma == 0)
    clean = find_leaks(xtr, digits.y_train, xte, digits.y_test, threshold=thr)
    assert clean.flagged.mean() <= 0.02  # the untouched test split is (almost) never flagged


def test_a_relabelled_copy_is_a_conflicting_label(digits):
    xtr = digits.x_train.flatten(1)
    thr = calibrated_threshold(xtr, seed=0)
    leaks = find_leaks(xtr, digits.y_train, xtr[:5], (digits.y_train[:5] + 1) % 10, threshold=thr)
    assert leaks.exact.all() and leaks.conflicting.all()
    assert np.array_equal(leaks.neighbour, np.arange(5))


def test_threshold_ignores_exact_duplicates_inside_train():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(400, 8, generator=g)
    with_dups = torch.cat([a, a[:100]])
    assert calibrated_threshold(with_dups, quantile=0.01, seed=0) > 0.05


def test_the_check_reports_injected_leaks_and_its_self_test(tmp_path):
    from audit.config import AuditConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    result = run_audit(AuditConfig(checks=("leakage",), training=TrainingConfig(epochs=2)))
    f = next(f for f in result.findings if f.check == "leakage")
    assert f.metrics["selftest_min_recall"] >= 0.95
    assert [r.sigma for r in f.details.selftest] == [0.0, 0.01, 0.03, 0.05]
    assert f.metrics["leaked_test_rate"] < 0.02 and f.details.embedding is not None


def test_test_outliers_flags_noise_rows_put_into_the_test_split(digits):
    """cleanlab OutOfDistribution on the baseline's embeddings: uniform-noise rows planted in the test split score
    below the training rows' 1% quantile; real digits mostly do not."""
    import dataclasses

    import torch

    from audit.config import AuditConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    g = torch.Generator().manual_seed(0)
    x_test = digits.x_test.clone()
    x_test[:20] = torch.rand(20, *x_test.shape[1:], generator=g)
    data = dataclasses.replace(digits, x_test=x_test)
    res = run_audit(AuditConfig(checks=("test_outliers",), training=TrainingConfig(epochs=8)), data=data)
    f = res.findings[-1]
    flagged = {int(i) for i in f.details.flagged}
    assert len(flagged & set(range(20))) >= 14  # measured 16 of 20: some noise maps onto the data manifold
    assert len(flagged - set(range(20))) / (len(x_test) - 20) < 0.05

"""Label issues: out-of-sample probabilities find injected flips (F1 >= 0.8 on digits), the in-sample guard
catches probabilities of a model that saw the labels, and user-supplied probabilities are validated."""
import numpy as np
import pytest
import torch

from audit.core.errors import UsageError
from audit.methods.label_issues import (
    find_issues,
    flip_labels,
    in_sample_suspected,
    proxy_probabilities,
    read_pred_probs,
)


def f1(found_idx, flipped):
    found = np.zeros(len(flipped), dtype=bool)
    found[found_idx] = True
    tp = (found & flipped).sum()
    p, r = tp / max(found.sum(), 1), tp / max(flipped.sum(), 1)
    return 2 * p * r / (p + r) if p + r else 0.0


def test_flips_hit_the_requested_share_and_always_change_the_label():
    y = np.arange(1000) % 10
    noisy, flipped = flip_labels(y, 0.1, 10, seed=0)
    assert flipped.sum() == 100
    assert (noisy[flipped] != y[flipped]).all() and (noisy[~flipped] == y[~flipped]).all()


@pytest.mark.slow
def test_a_linear_proxy_on_raw_pixels_finds_most_of_ten_percent_flips(digits):
    x = digits.x_train.flatten(1).numpy()
    noisy, flipped = flip_labels(digits.y_train.numpy(), 0.1, 10, seed=1)
    probs = proxy_probabilities(x, noisy, 10, folds=5, seed=0)
    assert in_sample_suspected(probs, noisy) == ""
    assert f1(find_issues(noisy, probs), flipped) >= 0.75  # the K-fold CNN reaches >= 0.8 (test_demo)


def test_in_sample_probabilities_are_caught_by_the_guard(digits, trained_cnn):
    """The same detector on the probabilities of a model trained on these very labels flags (almost) nothing."""
    y = digits.y_train.numpy()
    with torch.no_grad():
        probs = torch.softmax(trained_cnn(digits.x_train), 1).double().numpy()  # a model that saw these labels
        test_acc = float((trained_cnn(digits.x_test).argmax(1) == digits.y_test).float().mean())
    assert "in-sample" in in_sample_suspected(probs, y, (test_acc, len(digits.y_test)))
    x = digits.x_train.flatten(1).numpy()
    oof = proxy_probabilities(x, y, 10, folds=5, seed=0)  # out of sample: no alarm against the same reference
    assert in_sample_suspected(oof, y, (test_acc, len(digits.y_test))) == ""


@pytest.mark.parametrize("array,fragment", [(np.ones((3, 2)) / 2, "shape"), (np.full((5, 2), 0.7), "summing to 1"),
                                            (np.array([[np.nan, 1.0]] * 5), "finite")])
def test_user_probabilities_are_validated(tmp_path, array, fragment):
    path = tmp_path / "p.npy"
    np.save(path, array)
    with pytest.raises(UsageError, match=fragment):
        read_pred_probs(path, 5, 2)


def test_the_check_downgrades_in_sample_user_probabilities(tmp_path, digits):
    from audit.config import AuditConfig, LabelIssuesConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    y = digits.y_train.numpy()
    np.save(tmp_path / "p.npy", np.eye(10)[y] * 0.99 + 0.001)
    cfg = AuditConfig(checks=("label_issues",), training=TrainingConfig(epochs=2),
                      label_issues=LabelIssuesConfig(pred_probs=str(tmp_path / "p.npy")))
    f = next(f for f in run_audit(cfg).findings if f.check == "label_issues")
    assert f.status.value == "warn" and f.summary.startswith("IN-SAMPLE")
    assert f.details.test_split is not None


@pytest.mark.slow
def test_retraining_without_flagged_labels_reports_a_paired_accuracy_change(digits):
    """Opt-in retraining on the cleaned split: the removed rows are exactly the flagged ones, and the accuracy
    change agrees with the per-point discordant counts."""
    from audit.config import AuditConfig, LabelIssuesConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    off = run_audit(AuditConfig(checks=("retrain_cleaned",), training=TrainingConfig(epochs=3)), data=digits)
    assert off.findings[-1].status.value == "skipped" and "retrain_cleaned" in off.findings[-1].summary
    cfg = AuditConfig(checks=("label_issues", "retrain_cleaned"), training=TrainingConfig(epochs=6),
                      label_issues=LabelIssuesConfig(method="proxy", selftest_flip_rate=0.0, retrain_cleaned=True))
    res = run_audit(cfg, data=digits)
    li = next(f for f in res.findings if f.check == "label_issues")
    rc = next(f for f in res.findings if f.check == "retrain_cleaned")
    d = rc.details
    assert d.removed_rows == int(li.metrics["label_issues"]) > 0
    assert d.kept_rows + d.removed_rows == res.dataset.n_train
    assert abs(rc.metrics["accuracy_delta"] - (d.only_cleaned_correct - d.only_baseline_correct) / d.test_rows) < 1e-9
    assert 0 <= d.mcnemar_p <= 1 and d.cleaned_ci[0] <= d.cleaned_accuracy <= d.cleaned_ci[1]

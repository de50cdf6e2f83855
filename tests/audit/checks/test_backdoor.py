"""Backdoor screening detectors on constructed activations, the poisoning plan and trigger, and the check's
self-test on a tiny seeded run."""
import numpy as np
import pytest

from audit.config import BackdoorConfig
from audit.methods.backdoor import (
    add_trigger,
    centroid_ratio,
    poison_plan,
    rates,
    recall_at_fpr,
    robust_z,
    screen,
    spectral_signature,
)


def _classes(n=150, k=4, d=16, seed=0):
    """k well-separated Gaussian classes in d dimensions (what a trained penultimate layer looks like)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (k, d))
    y = np.repeat(np.arange(k), n)
    return centres[y] + rng.normal(0, 1, (len(y), d)), y, centres


def _poisoned(share=0.1, seed=0):
    """Class 1 gets a tight sub-cluster placed between class 0 and class 1, labelled 1 (a triggered '0')."""
    e, y, centres = _classes(seed=seed)
    rng = np.random.default_rng(seed + 1)
    n = int(round(share * (y == 1).sum() / (1 - share)))
    poison = 0.55 * centres[0] + 0.45 * centres[1] + rng.normal(0, 0.5, (n, e.shape[1]))
    e = np.vstack([e, poison])
    y = np.concatenate([y, np.ones(n, dtype=int)])
    truth = np.zeros(len(y), dtype=bool)
    truth[-n:] = True
    return e, y, truth


def test_activation_clustering_leaves_clean_classes_alone():
    e, y, _ = _classes()
    s = screen(e, y)
    assert not any(c["flagged"] for c in s.classes)
    assert not s.clustered.any()
    assert s.flagged.mean() < 0.1  # the z-score flags alone: a few tail rows at most


def test_activation_clustering_finds_a_planted_cluster_in_its_class_only():
    e, y, truth = _poisoned()
    s = screen(e, y)
    flagged = [c["class"] for c in s.classes if c["flagged"]]
    assert flagged == [1]
    r = rates(s.clustered, truth)
    assert r["recall"] >= 0.9 and r["false_positive_rate"] <= 0.02
    assert rates(s.flagged, truth)["recall"] >= 0.9


def test_a_natural_sub_style_that_does_not_move_towards_another_class_is_not_flagged():
    e, y, centres = _classes()
    rng = np.random.default_rng(5)
    away = centres[1] + 12 * (centres[1] - centres.mean(0)) / np.linalg.norm(centres[1] - centres.mean(0))
    extra = away + rng.normal(0, 0.5, (20, e.shape[1]))  # a second mode of class 1, away from every other class
    s = screen(np.vstack([e, extra]), np.concatenate([y, np.ones(20, dtype=int)]))
    c1 = next(c for c in s.classes if c["class"] == 1)
    assert c1["silhouette"] >= 0.35 and c1["small_cluster_share"] <= 0.35  # it does split
    assert not c1["flagged"]                                              # but the distance analysis clears it


def test_the_screen_is_seeded_and_leaves_numpy_global_state_alone():
    e, y, _ = _poisoned()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = screen(e, y, BackdoorConfig(), seed=3)
    assert (np.random.get_state()[1] == before).all()
    b = screen(e, y, BackdoorConfig(), seed=3)
    assert (a.clustered == b.clustered).all() and a.classes == b.classes


def test_centroid_ratio_and_spectral_score_rank_the_planted_rows_high():
    e, y, truth = _poisoned()
    assert recall_at_fpr(centroid_ratio(e, y), truth, 0.1) >= 0.9
    assert recall_at_fpr(spectral_signature(e, y), truth, 0.1) >= 0.9
    z = robust_z(centroid_ratio(e, y), y)
    assert np.median(z[truth]) > 3 > np.median(z[~truth])


def test_spectral_signature_is_centred():
    e, y, truth = _poisoned()
    shifted = e + 100.0  # an uncentred score would now rank by distance from the origin
    assert np.allclose(spectral_signature(shifted, y), spectral_signature(e, y), rtol=1e-6, atol=1e-6)


def test_poison_plan_follows_arts_all_to_all_convention():
    y = np.repeat(np.arange(5), [100, 80, 120, 100, 90])
    rows, new = poison_plan(y, 5, 0.1, seed=0)
    assert len(set(rows.tolist())) == len(rows)
    for t in range(5):
        picked = rows[new == t]
        assert (y[picked] == (t - 1) % 5).all()
        n_t = (y == t).sum()
        assert len(picked) == round(0.1 * n_t / 0.9)  # poisons make 10% of class t after poisoning
    assert poison_plan(y, 5, 0.0, seed=0)[0].size == 0


def test_image_trigger_is_arts_corner_pattern_on_every_channel_and_tabular_sets_last_features():
    x = np.zeros((3, 2, 8, 8), dtype=np.float32)
    t = add_trigger(x, "image", 1.0)
    changed = t != x
    assert changed.any() and (t[changed] == 1.0).all()
    assert changed[:, :, :4, :4].sum() == 0          # the pattern sits in the bottom-right corner
    assert (changed[:, 0] == changed[:, 1]).all()   # same pattern on every channel
    assert (x == 0).all()                           # the input is not modified
    tab = add_trigger(np.zeros((4, 6), dtype=np.float32), "tabular", 5.0)
    assert (tab[:, -3:] == 5.0).all() and (tab[:, :3] == 0).all()


@pytest.mark.slow
def test_backdoor_check_self_test_detects_a_planted_backdoor(digits):
    """The check end to end on a small seeded run: a real pattern backdoor, trained in, found."""
    from dataclasses import replace

    from audit.config import AuditConfig, BackdoorConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    cfg = AuditConfig(checks=("backdoor",), training=TrainingConfig(epochs=20, lr=0.004), backdoor=BackdoorConfig())
    res = run_audit(replace(cfg, checks=("backdoor",)), data=digits)
    f = next(f for f in res.findings if f.check == "backdoor")
    st = f.details.selftest
    assert st.attack_success_rate > 0.5, st           # the trigger took
    assert st.ranking["screen_score"].recall_at_10pct_fpr >= 0.8, st
    assert st.detectors["screen"].false_positive_rate <= 0.1, st
    assert f.metrics["backdoor_flag_rate"] <= 0.1         # the clean digits: few rows flagged
    assert f.metrics["suspicious_classes"] == 0
    assert all(t.threat != "Backdoor poisoning" for t in res.not_measured)


def test_backdoor_config_rejects_out_of_range_values():
    from audit.config import BackdoorConfig
    from audit.core.errors import UsageError
    with pytest.raises(UsageError, match="selftest_rate"):
        BackdoorConfig(selftest_rate=0.7).validate("backdoor")
    with pytest.raises(UsageError, match="max_cluster_share"):
        BackdoorConfig(max_cluster_share=0.9).validate("backdoor")

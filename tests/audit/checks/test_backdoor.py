"""Backdoor screening detectors on constructed activations, the poisoning plans and trigger, the class-level rule's
parts (held-out support, neighbour labels), and the check's self-test on a tiny seeded run. Real pattern backdoors
on digits28 are in test_backdoor_patterns.py."""
import numpy as np
import pytest
import torch

from audit.config import BackdoorConfig
from audit.methods import backdoor as backdoor_methods
from audit.methods.backdoor import (
    add_trigger,
    centroid_ratio,
    class_rates,
    neighbour_labels,
    poison_plan,
    rates,
    recall_at_fpr,
    robust_z,
    screen,
    spectral_signature,
)
from audit.methods.backdoor_clusters import cluster_silhouette


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


def test_poison_plan_all_to_one_draws_from_every_other_class_into_the_target():
    y = np.repeat(np.arange(5), [100, 80, 120, 100, 90])
    rows, new = poison_plan(y, 5, 0.2, seed=0, pattern="all-to-one", target=2)
    assert (new == 2).all() and (y[rows] != 2).all() and len(set(rows.tolist())) == len(rows)
    assert len(rows) == round(0.2 * 120 / 0.8)            # 20% of the target class after poisoning
    assert len(set(y[rows].tolist())) >= 3                # drawn from the other classes, not one source
    with pytest.raises(ValueError, match="pattern"):
        poison_plan(y, 5, 0.1, seed=0, pattern="one-to-one")


def test_class_rates_count_poisoned_and_untouched_classes():
    assert class_rates([0, 3], [0, 1], [0, 1, 2, 3]) == {"recall": 0.5, "false_positive_rate": 0.5}
    r = class_rates([0, 1], [0, 1], [0, 1])                # all-to-all: no untouched class
    assert r["recall"] == 1.0 and np.isnan(r["false_positive_rate"])


def test_a_cluster_the_held_out_rows_leave_empty_is_flagged_without_the_ratio():
    """A tight cluster between classes 0 and 1 that the centroid ratio does not flag (ratio_z set out of reach)
    is still suspicious when the held-out rows of class 1 never fall into it; a natural style that held-out rows
    do fill is not."""
    e, y, truth = _poisoned()
    strict = BackdoorConfig(ratio_z=1e9)
    rng = np.random.default_rng(7)
    _, _, centres = _classes()
    yh = np.repeat(np.arange(4), 60)
    held = centres[yh] + rng.normal(0, 1, (len(yh), e.shape[1]))   # clean held-out rows: no poison cluster
    assert screen(e, y, strict).suspicious_classes == []           # no agreement without held-out evidence
    s = screen(e, y, strict, heldout=(held, yh))
    assert s.suspicious_classes == [1] and truth[s.clustered].mean() >= 0.9
    c1 = next(c for c in s.classes if c["class"] == 1)
    assert c1["heldout_rows"] == 0 and c1["heldout_p"] <= 0.01 and c1["heldout_expected"] > 3
    # the same rows, but held-out data has them too (a style of the class): not suspicious
    share = truth.sum() / (y == 1).sum()
    style = e[truth][: int(round(share * 60))]
    s2 = screen(e, y, strict, heldout=(np.vstack([held, style]), np.concatenate([yh, np.ones(len(style), int)])))
    assert s2.suspicious_classes == []


def test_neighbour_labels_share_and_the_commonest_other_label():
    e = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2], [0.15]])
    y = np.array([0, 0, 0, 1, 1, 1, 1])                    # the last row sits among class 0
    share, plural = neighbour_labels(e, y, k=2, seed=0)
    assert share[-1] == 1.0 and plural[-1] == 0
    assert share[3] == 0.0 and plural[3] == -1


def test_a_class_among_many_source_classes_is_flagged_by_its_neighbours_labels():
    """All-to-one without a cluster: class 0 holds single rows that sit inside each of the other classes."""
    e, y, centres = _classes(n=150, k=6)
    rng = np.random.default_rng(3)
    odd = np.vstack([centres[j] + rng.normal(0, 1, (3, e.shape[1])) for j in range(1, 6)])   # 15 rows, 5 sources
    s = screen(np.vstack([e, odd]), np.concatenate([y, np.zeros(len(odd), int)]))
    c0 = next(c for c in s.classes if c["class"] == 0)
    assert s.suspicious_classes == [0] and c0["evidence"] == "neighbour labels"
    assert set(c0["neighbour_classes"]) == {1, 2, 3, 4, 5}
    assert screen(e, y).suspicious_classes == []           # the clean classes alone: none


def test_cluster_silhouette_of_a_separated_group_and_of_a_random_one():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (90, 4)), rng.normal(8, 1, (10, 4))])
    far = np.zeros(100, dtype=bool)
    far[90:] = True
    assert cluster_silhouette(x, far, seed=0) > 0.7
    assert cluster_silhouette(x, rng.permutation(far), seed=0) < 0.1


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
def test_backdoor_check_self_test_detects_planted_backdoors(digits):
    """The check end to end on a small seeded run: both patterns planted, trained in, found, row by row and class by
    class; its inner stages are in the run record."""
    from dataclasses import replace

    from audit.config import AuditConfig, BackdoorConfig, TrainingConfig
    from audit.engine.pipeline import run_audit
    cfg = AuditConfig(checks=("backdoor",), training=TrainingConfig(epochs=20, lr=0.004), backdoor=BackdoorConfig())
    res = run_audit(replace(cfg, checks=("backdoor",)), data=digits)
    f = next(f for f in res.findings if f.check == "backdoor")
    tests = {t.pattern: t for t in f.details.selftests}
    assert set(tests) == {"all-to-all", "all-to-one"} and f.details.selftest is f.details.selftests[0]
    for st in tests.values():
        assert st.attack_success_rate > 0.5, st           # the trigger took
        assert st.detectors["screen"].false_positive_rate <= 0.1, st
        assert st.class_recall is not None and st.class_recall >= 0.5, st
    assert tests["all-to-all"].ranking["screen_score"].recall_at_10pct_fpr >= 0.8
    assert tests["all-to-all"].class_false_positive_rate is None      # every class was poisoned
    one = tests["all-to-one"]
    assert len(one.poisoned_classes) == 1 and one.class_false_positive_rate <= 0.1
    assert f.metrics["selftest_class_recall"] == min(t.class_recall for t in tests.values())
    assert f.metrics["backdoor_flag_rate"] <= 0.1         # the clean digits: few rows flagged
    assert f.metrics["suspicious_classes"] == 0
    assert all(t.threat != "Backdoor poisoning" for t in res.not_measured)
    stages = {(s.name, s.parent) for s in res.run_record.stages}
    assert {("backdoor: embeddings", "check backdoor"), ("backdoor: screen", "check backdoor"),
            ("backdoor: self-test training", "check backdoor"),
            ("train the backdoored copy (all-to-one)", "backdoor: self-test training"),
            ("backdoor: self-test screen (all-to-all)", "check backdoor"),
            ("backdoor: PCA and k-means", "backdoor: self-test screen (all-to-one)")} <= stages


def test_backdoor_config_rejects_out_of_range_values():
    from audit.config import BackdoorConfig
    from audit.core.errors import UsageError
    with pytest.raises(UsageError, match="selftest_rate"):
        BackdoorConfig(selftest_rate=0.7).validate("backdoor")
    with pytest.raises(UsageError, match="max_cluster_share"):
        BackdoorConfig(max_cluster_share=0.9).validate("backdoor")
    with pytest.raises(UsageError, match="selftest_patterns"):
        BackdoorConfig(selftest_patterns=("all-to-all", "one-to-one")).validate("backdoor")
    with pytest.raises(UsageError, match="nb_clusters"):
        BackdoorConfig(nb_clusters=(1,)).validate("backdoor")
    with pytest.raises(UsageError, match="heldout_p"):
        BackdoorConfig(heldout_p=2.0).validate("backdoor")
    BackdoorConfig(selftest_patterns=("all-to-one",)).validate("backdoor")


def _svd_signature(e, labels):
    """The spectral signature from a full SVD of each centred class (how it was computed before issue 30)."""
    s = np.zeros(len(labels))
    for c in np.unique(labels):
        r = e[labels == c] - e[labels == c].mean(0)
        if len(r) >= 2:
            s[labels == c] = (r @ np.linalg.svd(r, full_matrices=False)[2][0]) ** 2
    return s


def test_spectral_signature_from_the_top_eigenpair_equals_the_full_svd_on_tall_and_wide_classes():
    rng = np.random.default_rng(4)
    for n, d in ((200, 16), (12, 40)):    # rows >= dimensions (R^T R) and fewer rows than dimensions (R R^T)
        e = rng.normal(0, 1, (3 * n, d)) * np.linspace(3, 1, d)
        y = np.repeat(np.arange(3), n)
        ref = _svd_signature(e, y)
        assert np.allclose(spectral_signature(e, y), ref, rtol=1e-9, atol=1e-12 * ref.max())


def test_the_screen_is_the_same_with_the_top_eigenpair_as_with_the_full_svd(monkeypatch):
    e, y, truth = _poisoned()
    rng = np.random.default_rng(7)
    _, _, centres = _classes()
    yh = np.repeat(np.arange(4), 60)
    held = (centres[yh] + rng.normal(0, 1, (len(yh), e.shape[1])), yh)
    fast = screen(e, y, seed=0, heldout=held)
    monkeypatch.setattr(backdoor_methods, "spectral_signature", _svd_signature)
    ref = screen(e, y, seed=0, heldout=held)
    assert ref.spectral_flag[truth].any()
    for name, flag in ref.detectors().items():
        assert (fast.detectors()[name] == flag).all(), name
    assert fast.classes == ref.classes
    assert np.allclose(fast.spectral_z, ref.spectral_z, rtol=1e-9, atol=1e-9)


def test_one_pass_gives_the_held_out_embeddings_and_the_clean_predictions(small_ctx):
    from audit.checks.backdoor_selftest import embed_and_predict
    from audit.models.embeddings import penultimate
    model, x, dev = small_ctx.variants["baseline"].model, small_ctx.data.x_test, small_ctx.device
    counter = small_ctx.recorder.counter
    before = counter.forward
    emb, pred = embed_and_predict(model, x, device=dev, batch_size=50)   # 120 rows: three batches
    assert counter.forward - before == len(x)                            # one forward pass, not two
    assert torch.equal(emb, penultimate(model, x, device=dev, batch_size=50))
    assert torch.equal(pred, small_ctx.logits(model, x).argmax(1))


def test_the_run_record_names_the_backdoor_checks_inner_stages(small_ctx):
    """Every part of the check (screen parts, the self-test's poisoning, training, embeddings, attack success and
    screen) is a named stage, and the named stages account for nearly all of the check's time."""
    from audit.checks.backdoor import Backdoor
    rec = small_ctx.recorder
    start = len(rec.stages)
    with small_ctx.stage("check backdoor"):
        m = Backdoor().measure(small_ctx)
    assert m.details.selftests    # the self-test ran
    new = [s for s in rec.stages[start:] if s is not None]
    pairs = {(s.name, s.parent) for s in new}
    parts = ("centroid ratio", "spectral signature", "neighbour labels", "PCA and k-means", "class rule")
    for screen_stage in ("backdoor: screen", "backdoor: self-test screen (all-to-all)",
                         "backdoor: self-test screen (all-to-one)"):
        assert (screen_stage, "check backdoor") in pairs
        assert {(f"backdoor: {part}", screen_stage) for part in parts} <= pairs, screen_stage
    for pattern in ("all-to-all", "all-to-one"):
        assert {(f"backdoor: self-test embeddings ({pattern})", "check backdoor"),
                (f"backdoor: self-test attack success ({pattern})", "check backdoor"),
                (f"train the backdoored copy ({pattern})", "backdoor: self-test training")} <= pairs
    assert {("backdoor: embeddings", "check backdoor"), ("backdoor: self-test poisoning", "check backdoor"),
            ("backdoor: self-test training", "check backdoor")} <= pairs
    check = next(s for s in new if s.name == "check backdoor")
    children = [s for s in new if s.parent == "check backdoor"]
    assert all(s.name.startswith("backdoor: ") for s in children)
    assert sum(s.seconds for s in children) >= 0.9 * check.seconds

"""Against the official AutoAttack (fra31/auto-attack, installed as ``pyautoattack``, a test extra): the pieces
that must agree exactly (FAB's projection, the targeted DLR loss, the target ranking) and the standard chain at a
small budget on the same points, where ours may not be weaker. bench/autoattack_ratio.py times both."""
import pytest
import torch

from attacks import ATTACKS
from attacks.base import Ball, Norm
from attacks.fab import project
from attacks.losses import dlr
from attacks.targeted import target_classes

aa_proj = pytest.importorskip("pyautoattack.fab_projections")


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L2])
def test_fab_projection_equals_autoattacks(norm):
    g = torch.Generator().manual_seed(0)
    t, w = torch.rand(64, 50, generator=g), torch.randn(64, 50, generator=g)
    offset = 0.3 * torch.randn(64, generator=g)            # small enough for the box to reach the hyperplane
    b = (w * t).sum(1) + offset                            # AutoAttack's hyperplane: <w, t + d> = b
    theirs = (aa_proj.projection_linf if norm is Norm.LINF else aa_proj.projection_l2)(t, w, b)
    ours = project(t, w, offset, 0.0, 1.0, norm)           # ours: <w, d> = offset
    assert torch.allclose((w * (t + ours)).sum(1), b, atol=1e-4)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_targeted_dlr_and_target_ranking_equal_autoattacks(trained_cnn, eval_batch):
    from pyautoattack.autopgd_base import APGDAttack_targeted
    x, y = eval_batch
    with torch.no_grad():
        logits = trained_cnn(x)
    ok = logits.argmax(1) == y                             # AutoAttack attacks only the correctly classified
    mine = target_classes(trained_cnn, x[ok], y[ok], 9)
    for j, target_class in enumerate(range(2, 11)):        # AutoAttack's target_class 2..10: sort()[1][:, -k]
        assert torch.equal(mine[:, j], logits[ok].sort(dim=1)[1][:, -target_class])
    attack = APGDAttack_targeted(trained_cnn, n_iter=1, eps=0.1, device="cpu")
    attack.y_target = mine[:, 0]
    assert torch.allclose(dlr(logits[ok], y[ok], mine[:, 0]), attack.dlr_loss_targeted(logits[ok], y[ok]),
                          atol=1e-6)


def test_our_standard_chain_is_not_weaker_than_autoattacks_on_the_same_points(trained_cnn, digits):
    from pyautoattack import AutoAttack
    x, y = digits.x_test[:60], digits.y_test[:60]
    eps, small = 0.08, {"apgd_ce": {"steps": 20}, "apgd_t": {"steps": 20, "n_targets": 3},
                        "fab_t": {"steps": 20, "n_targets": 3}, "square": {"queries": 300}}
    aa = AutoAttack(trained_cnn, norm="Linf", eps=eps, version="standard", seed=0, device="cpu")
    aa.logger.disabled = True
    aa.apgd.n_iter = aa.apgd_targeted.n_iter = aa.fab.n_iter = 20
    aa.apgd_targeted.n_target_classes = aa.fab.n_target_classes = 3
    aa.square.n_queries = 300
    with torch.no_grad():
        theirs = aa.run_standard_evaluation(x, y, batch_size=60)[1] == y  # (x_adv, its predictions)
        robust = trained_cnn(x).argmax(1) == y
    for name, settings in small.items():
        idx = robust.nonzero().flatten()
        spec = ATTACKS[name]
        out = spec.function(trained_cnn, x[idx], y[idx], Ball(eps), spec.make(**settings),
                            generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            robust[idx] = trained_cnn(out.x_adv).argmax(1) == y[idx]
    assert 5 <= int(theirs.sum()) <= 55                   # a budget where both break some points, not all
    assert int((robust & ~theirs).sum()) <= 1             # points AutoAttack breaks and we do not
    assert int(robust.sum()) <= int(theirs.sum()) + 1

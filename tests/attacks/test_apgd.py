"""APGD-CE / APGD-DLR / targeted attacks: valid perturbations, strength, exact pass counts, presets."""
import pytest
import torch

from attacks import ATTACKS
from attacks.apgd import apgd_ce, apgd_dlr
from attacks.losses import dlr
from attacks.pgd import pgd
from attacks.targeted import target_classes
from audit.config import AttackConfig
from audit.core.errors import UsageError
from audit.core.serde import from_data


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_dlr", "apgd_t", "pgd_t"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_perturbations_stay_in_the_ball_and_the_range(trained_cnn, eval_batch, name, norm, eps):
    x, y = eval_batch
    targets = {"n_targets": 2} if "n_targets" in ATTACKS[name].param_names else {}
    out = ATTACKS[name](trained_cnn, x, y, eps=eps, norm=norm, clip=(0.0, 1.0), steps=10,
                        generator=torch.Generator().manual_seed(0), **targets)
    d = (out.x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert accuracy(trained_cnn, out.x_adv, y) < accuracy(trained_cnn, x, y) - 0.1


def test_apgd_is_at_least_as_strong_as_pgd_at_the_same_budget(trained_cnn, eval_batch):
    x, y = eval_batch
    g = torch.Generator().manual_seed(0)
    acc_pgd = accuracy(trained_cnn, pgd(trained_cnn, x, y, eps=0.1, steps=20, generator=g).x_adv, y)
    acc_apgd = accuracy(trained_cnn, apgd_ce(trained_cnn, x, y, eps=0.1, steps=20, generator=g).x_adv, y)
    assert acc_apgd <= acc_pgd + 0.01


def test_early_stop_gives_the_same_points_for_fewer_passes(trained_cnn, eval_batch):
    x, y = eval_batch
    fixed = apgd_ce(trained_cnn, x, y, eps=0.15, steps=20, generator=torch.Generator().manual_seed(1))
    early = apgd_ce(trained_cnn, x, y, eps=0.15, steps=20, early_stop=True, generator=torch.Generator().manual_seed(1))
    assert fixed.example_passes == 21 * x.shape[0]   # the start point and every step
    assert early.example_passes < fixed.example_passes / 3
    with torch.no_grad():
        assert torch.equal(trained_cnn(early.x_adv).argmax(1) == y, trained_cnn(fixed.x_adv).argmax(1) == y)


def test_pgd_early_stop_is_identical_to_fixed_steps_by_construction(trained_cnn, eval_batch):
    x, y = eval_batch
    runs = [pgd(trained_cnn, x, y, eps=0.1, steps=20, restarts=2, early_stop=e,
                generator=torch.Generator().manual_seed(2)) for e in (False, True)]
    with torch.no_grad():
        masks = [trained_cnn(r.x_adv).argmax(1) == y for r in runs]
    assert torch.equal(masks[0], masks[1])
    assert runs[1].example_passes < runs[0].example_passes


def test_dlr_is_invariant_to_scaling_and_shifting_the_logits():
    z = torch.randn(16, 10)
    y = torch.randint(0, 10, (16,))
    assert torch.allclose(dlr(z, y), dlr(50 * z + 3, y), atol=1e-5)
    t = (y + 1) % 10
    assert torch.allclose(dlr(z, y, t), dlr(7 * z - 1, y, t), atol=1e-5)
    assert (dlr(z, y) > 0).eq(z.argmax(1) != y).all()  # positive exactly when misclassified


def test_dlr_defeats_a_saturated_softmax_that_masks_cross_entropy(trained_cnn, eval_batch):
    """Logits x 1000: CE gradients underflow to zero on confident points, DLR is scale invariant."""
    class Saturated(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x) * 1e4

    x, y = eval_batch
    masked = Saturated(trained_cnn).eval()
    g = torch.Generator().manual_seed(0)
    ce = accuracy(masked, apgd_ce(masked, x, y, eps=0.1, steps=20, generator=g).x_adv, y)
    d = accuracy(masked, apgd_dlr(masked, x, y, eps=0.1, steps=20, generator=g).x_adv, y)
    assert d < ce - 0.05


def test_targets_are_the_highest_ranked_wrong_classes(trained_cnn, eval_batch):
    x, y = eval_batch
    t = target_classes(trained_cnn, x, y, 3)
    assert t.shape == (x.shape[0], 3)
    assert not (t == y[:, None]).any()
    with torch.no_grad():
        z = trained_cnn(x)
    assert (z.gather(1, t[:, :1]) >= z.gather(1, t[:, 1:2])).all()


def test_presets_fill_unset_keys_and_explicit_keys_win():
    q, s, t = AttackConfig(preset="quick"), AttackConfig(), AttackConfig(preset="thorough")
    assert q.attacks == ("fgsm", "pgd") and q.pgd_steps == 10
    assert s.attacks == ("fgsm", "apgd_ce", "apgd_t", "fab_t", "square") and s.apgd_steps == 100  # AutoAttack's
    assert s.chain == ("apgd_ce", "apgd_t", "fab_t", "square") and s.square_queries == 5000 and s.n_targets == 9
    assert {"apgd_dlr", "fab"} <= set(t.attacks) and t.pgd_restarts == 3 and t.apgd_restarts == 5
    own = AttackConfig(preset="thorough", pgd_steps=7, attacks=("pgd",))
    assert own.pgd_steps == 7 and own.attacks == ("pgd",) and own.apgd_steps == 100
    assert own.params("pgd") == {"early_stop": True, "steps": 7, "restarts": 3} and own.chain == ()
    assert "9 target classes" in t.describe("apgd_t")
    with pytest.raises(UsageError, match="attacks.preset: 'fast' is not a preset"):
        from_data(AttackConfig, {"preset": "fast"}, "attacks")


def test_dlr_is_skipped_with_a_reason_on_a_binary_model():
    from audit.methods.evaluation import GridRun, evaluate_robustness
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    x, y = torch.rand(32, 4), torch.randint(0, 2, (32,))
    settings = AttackConfig(preset="thorough", eps=(0.1,), attacks=("fgsm", "pgd", "apgd_ce", "apgd_dlr", "square"),
                            apgd_steps=5, pgd_steps=5, apgd_restarts=1, pgd_restarts=1)
    ev = evaluate_robustness(model, x, y, GridRun(settings=settings, clip=(0.0, 1.0), device=torch.device("cpu"),
                                                  seed=0))
    assert "apgd_dlr" in ev.skipped and "3 classes" in ev.skipped["apgd_dlr"]
    assert "square" in ev.skipped and "images" in ev.skipped["square"]  # tabular rows have no square windows
    assert {p.attack for p in ev.points} == {"fgsm", "pgd", "apgd_ce", "worst_case"}


def test_bf16_and_channels_last_agree_with_fp32_and_leave_the_model_as_it_was(trained_cnn, digits):
    from audit.methods.evaluation import GridRun, evaluate_robustness
    x, y = digits.x_test[:150], digits.y_test[:150]
    runs = {}
    for precision, cl in (("fp32", False), ("bf16", True)):
        s = AttackConfig(attacks=("pgd",), eps=(0.1,), pgd_steps=10, precision=precision, channels_last=cl)
        ev = evaluate_robustness(trained_cnn, x, y, GridRun(settings=s, clip=(0.0, 1.0), device=torch.device("cpu"),
                                                            seed=0))
        runs[precision] = ev.points[0].robust_accuracy
        assert ev.validity.max_norm_ratio <= 1 + 1e-5
    assert abs(runs["bf16"] - runs["fp32"]) <= 0.05
    conv = next(m for m in trained_cnn.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()

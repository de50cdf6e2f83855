import pytest
import torch

from attacks import ATTACKS, fgsm, pgd
from attacks.base import Norm
from audit.methods.evaluation import perturbation_norm


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("norm,eps", [(Norm.LINF, 0.1), (Norm.L2, 0.8)])
def test_perturbation_stays_in_ball_and_clip_range(trained_cnn, eval_batch, name, norm, eps):
    x, y = eval_batch
    settings = {k: v for k, v in dict(steps=5, queries=300).items() if k in ATTACKS[name].param_names}
    out = ATTACKS[name](trained_cnn, x, y, eps=eps, norm=norm, clip=(0.0, 1.0),
                        generator=torch.Generator().manual_seed(0), **settings)
    assert out.x_adv.shape == x.shape
    assert torch.isfinite(out.x_adv).all()
    assert out.x_adv.min() >= 0.0 and out.x_adv.max() <= 1.0
    assert perturbation_norm(out.x_adv - x, norm).max() <= eps * (1 + 1e-5)
    assert accuracy(trained_cnn, out.x_adv, y) < accuracy(trained_cnn, x, y)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_never_mutates_the_model_and_restores_its_mode(trained_cnn, eval_batch, name):
    x, y = eval_batch
    before = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    trained_cnn.train()
    try:
        ATTACKS[name](trained_cnn, x, y, eps=0.1, **{k: v for k, v in dict(steps=3, queries=50).items()
                                                     if k in ATTACKS[name].param_names})
        assert trained_cnn.training, "train mode was not restored"
        assert all(p.requires_grad for p in trained_cnn.parameters())
        assert all(torch.equal(before[k], v) for k, v in trained_cnn.state_dict().items())
    finally:
        trained_cnn.eval()


def test_pgd_at_least_as_strong_as_fgsm_and_reaches_zero_at_large_eps(trained_cnn, eval_batch):
    x, y = eval_batch
    acc_fgsm = accuracy(trained_cnn, fgsm(trained_cnn, x, y, eps=0.15).x_adv, y)
    acc_pgd = accuracy(trained_cnn, pgd(trained_cnn, x, y, eps=0.15, steps=20).x_adv, y)
    assert acc_pgd <= acc_fgsm + 0.01
    assert accuracy(trained_cnn, pgd(trained_cnn, x, y, eps=0.5, steps=20).x_adv, y) <= 0.1 + 0.02


def test_restarts_only_add_adversarial_examples(trained_cnn, eval_batch):
    x, y = eval_batch
    one = pgd(trained_cnn, x, y, eps=0.08, steps=5, restarts=1, generator=torch.Generator().manual_seed(3))
    three = pgd(trained_cnn, x, y, eps=0.08, steps=5, restarts=3, generator=torch.Generator().manual_seed(3))
    assert accuracy(trained_cnn, three.x_adv, y) <= accuracy(trained_cnn, one.x_adv, y)
    assert three.example_passes > one.example_passes


def test_early_stop_spends_fewer_passes_and_is_never_weaker(trained_cnn, eval_batch):
    x, y = eval_batch
    fixed = pgd(trained_cnn, x, y, eps=0.2, steps=20, generator=torch.Generator().manual_seed(0))
    early = pgd(trained_cnn, x, y, eps=0.2, steps=20, early_stop=True, generator=torch.Generator().manual_seed(0))
    assert fixed.example_passes == 20 * x.shape[0]
    assert early.example_passes < fixed.example_passes / 2
    assert accuracy(trained_cnn, early.x_adv, y) <= accuracy(trained_cnn, fixed.x_adv, y)


def test_targeted_pgd_moves_predictions_to_the_target(trained_cnn, eval_batch):
    x, y = eval_batch
    target = (y + 1) % 10
    adv = pgd(trained_cnn, x, y, eps=0.3, steps=30, target=target, keep_adversarial=False).x_adv  # the last iterate
    with torch.no_grad():
        hit = (trained_cnn(adv).argmax(1) == target).float().mean().item()
    assert hit > 0.8

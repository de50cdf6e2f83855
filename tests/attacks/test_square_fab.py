"""The native Square attack (Linf, L2) and FAB / FAB-T: inside the ball and the range, seeded, stopping per
example, counting their queries; Square breaks a gradient-masked model the gradient attacks cannot; FAB-T agrees
with APGD-CE; the hyperplane-and-box projection FAB stands on is exact."""
from __future__ import annotations

import pytest
import torch

from attacks.apgd import apgd_ce
from attacks.base import Norm
from attacks.fab import fab, fab_t, project
from attacks.pgd import pgd
from attacks.square import p_at, square


class Quantised(torch.nn.Module):
    """Rounds inputs to the digits' 1/16 grid before a trained CNN: zero input gradient, same clean accuracy."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 16) / 16)


def acc(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("norm,eps", [(Norm.LINF, 0.1), (Norm.L2, 1.0)])
def test_square_stays_in_the_ball_counts_queries_and_is_seeded(trained_cnn, eval_batch, norm, eps):
    x, y = eval_batch
    runs = [square(trained_cnn, x, y, eps=eps, norm=norm, queries=200, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert torch.equal(runs[0].x_adv, runs[1].x_adv)
    out = runs[0]
    d = (out.x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm is Norm.LINF else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all() and out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert out.example_passes == 0 and len(x) < out.forward_passes <= 200 * len(x)
    assert acc(trained_cnn, out.x_adv, y) < acc(trained_cnn, x, y) - 0.1


def test_square_stops_querying_an_example_once_it_is_fooled(trained_cnn, eval_batch):
    x, y = eval_batch
    out = square(trained_cnn, x, y, eps=0.3, queries=500, generator=torch.Generator().manual_seed(0))
    assert acc(trained_cnn, out.x_adv, y) == 0.0
    assert out.forward_passes < 0.2 * 500 * len(x)  # broken early, queried no more


@pytest.mark.slow
def test_square_breaks_a_gradient_masked_model_that_pgd_cannot(trained_cnn, eval_batch):
    x, y = eval_batch
    masked = Quantised(trained_cnn).eval()
    white = acc(masked, pgd(masked, x, y, eps=0.15, steps=20).x_adv, y)
    black = acc(masked, square(masked, x, y, eps=0.15, queries=1000, generator=torch.Generator().manual_seed(0))
                .x_adv, y)
    assert white > 0.8 and black < white - 0.4, (white, black)


def test_the_window_share_halves_on_the_papers_schedule():
    assert p_at(0.8, 0, 10000) == 0.8 and p_at(0.8, 30, 10000) == 0.4 and p_at(0.8, 9000, 10000) == 0.8 / 512
    assert p_at(0.8, 15, 1000) == p_at(0.8, 150, 10000)  # scaled to the budget


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L2])
def test_the_projection_onto_hyperplane_and_box_is_minimal(norm):
    torch.manual_seed(0)
    p, w = torch.rand(256, 6), torch.randn(256, 6)
    b = torch.randn(256) * 0.3
    d = project(p, w, b, 0.0, 1.0, norm)
    assert ((p + d) >= -1e-6).all() and ((p + d) <= 1 + 1e-6).all()
    reach = torch.where(b[:, None] > 0, torch.where(w > 0, 1 - p, -p), torch.where(w < 0, 1 - p, -p))
    feasible = b.abs() < (w * reach).sum(1).abs() - 1e-5
    assert torch.allclose((w * d).sum(1)[feasible], b[feasible], atol=1e-4)
    size = d.abs().amax(1) if norm is Norm.LINF else d.norm(dim=1)
    for _ in range(50):  # no random feasible step is smaller
        r = torch.rand(256, 6) - p
        val = (w * r).sum(1)
        r = r * (b / val)[:, None]
        ok = feasible & (val.sign() == b.sign()) & ((p + r) >= 0).all(1) & ((p + r) <= 1).all(1)
        other = r.abs().amax(1) if norm is Norm.LINF else r.norm(dim=1)
        assert (size[ok] <= other[ok] + 1e-5).all()


@pytest.mark.parametrize("norm,eps", [(Norm.LINF, 0.1), (Norm.L2, 1.0)])
def test_fab_t_agrees_with_apgd_ce_and_returns_points_within_eps(trained_cnn, eval_batch, norm, eps):
    x, y = eval_batch[0][:80], eval_batch[1][:80]
    out = fab_t(trained_cnn, x, y, eps=eps, norm=norm, steps=50, n_targets=3)
    d = (out.x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm is Norm.LINF else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all() and out.example_passes > 0 and out.forward_passes > 0
    ref = acc(trained_cnn, apgd_ce(trained_cnn, x, y, eps=eps, norm=norm, steps=50).x_adv, y)
    assert abs(acc(trained_cnn, out.x_adv, y) - ref) <= 0.05


def test_untargeted_fab_finds_a_boundary_point(trained_cnn, eval_batch):
    x, y = eval_batch[0][:40], eval_batch[1][:40]
    out = fab(trained_cnn, x, y, eps=0.2, norm=Norm.LINF, steps=30)
    assert acc(trained_cnn, out.x_adv, y) < acc(trained_cnn, x, y) - 0.3

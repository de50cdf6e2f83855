"""Certified bounds (attacks/ibp.py, attacks/crown.py): sound on every architecture covered, CROWN never looser
than IBP, IBP equal to ART's interval estimator, and a clear refusal for what is not covered."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attacks import ATTACKS
from attacks.bound_graph import NotCertifiable, traced
from attacks.certify import certify
from attacks.ibp import input_box, interval_bounds
from audit.models.adapters import InputAffine
from audit.models.reference import MLP, SmallCNN


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2, self.pool, self.fc = nn.Conv2d(4, 4, 3, padding=1), nn.AvgPool2d(2), nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.bn(self.c1(x)))
        h = h + torch.relu(self.c2(h))
        return self.fc(torch.flatten(self.pool(h), 1))


class ArtShaped(nn.Module):
    """Conv, ReLU and Linear children in forward order: the layers ART's interval estimator converts."""

    def __init__(self):
        super().__init__()
        self.c1, self.r1, self.c2, self.r2 = nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2), nn.ReLU()
        self.fc, self.r3, self.out = nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10)

    def forward(self, x):
        h = self.r2(self.c2(self.r1(self.c1(x))))
        return self.out(self.r3(self.fc(h.flatten(1))))


def _models():
    torch.manual_seed(0)
    res = Residual().eval()
    res.bn.running_mean.uniform_(-0.1, 0.1)
    res.bn.running_var.uniform_(0.5, 2.0)
    return {"mlp": nn.Sequential(nn.Flatten(), MLP(64, 10)).eval(), "cnn-maxpool": SmallCNN(width=8).eval(),
            "residual-bn-avgpool": res, "normalised": InputAffine(SmallCNN(width=8), torch.tensor(2.0),
                                                                   torch.tensor(-0.5)).eval()}


def _margins(model, x, y):
    out = model(x)
    others = ~torch.nn.functional.one_hot(y, out.shape[1]).bool()
    return out.gather(1, y[:, None]) - out[others].reshape(len(y), -1)


@pytest.mark.parametrize("norm,eps", [("linf", 0.01), ("l2", 0.1)])
@pytest.mark.parametrize("name", list(_models()))
def test_bounds_hold_at_random_and_attacked_points_and_crown_is_never_looser(name, norm, eps):
    model = _models()[name]
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    crown = certify(model, x, y, eps=eps, norm=norm)
    ibp = certify(model, x, y, eps=eps, norm=norm, method="ibp")
    assert (crown.margins >= ibp.margins - 1e-5).all()
    assert crown.certified.sum() >= ibp.certified.sum()
    gen = torch.Generator().manual_seed(2)
    for _ in range(8):
        d = torch.rand(x.shape, generator=gen) * 2 - 1
        d = d * eps if norm == "linf" else d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * eps
        with torch.no_grad():
            assert (_margins(model, (x + d).clamp(0, 1), y) >= crown.margins - 1e-4).all()
    adv = ATTACKS["pgd"](model, x, y, eps=eps, norm=norm, steps=20).x_adv
    with torch.no_grad():
        broken = model(adv).argmax(1) != y
        assert (_margins(model, adv, y) >= crown.margins - 1e-4).all()
    assert not (broken & crown.certified).any()  # a point an attack broke is never certified


def test_crown_certifies_where_ibp_cannot():
    model = _models()["cnn-maxpool"]
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    crown, ibp = certify(model, x, y, eps=0.005), certify(model, x, y, eps=0.005, method="ibp")
    assert crown.certified.float().mean() > ibp.certified.float().mean()
    assert crown.certified.any()


def test_ibp_equals_art_interval_estimator():
    from art.estimators.certification.interval import PyTorchIBPClassifier
    torch.manual_seed(3)
    model = ArtShaped().eval()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    art = PyTorchIBPClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                               clip_values=(0.0, 1.0), device_type="cpu")
    theirs = art.predict_intervals(x.numpy(), bounds=0.02, limits=[0.0, 1.0])  # N x 2 x K: lower, upper
    lo, hi = input_box(x, 0.02, (0.0, 1.0))
    ours = interval_bounds(traced(model, x), lo, hi)[-1]
    np.testing.assert_allclose(ours[0].numpy(), theirs[:, 0], atol=1e-5)
    np.testing.assert_allclose(ours[1].numpy(), theirs[:, 1], atol=1e-5)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


@pytest.mark.parametrize("model,needle", [
    (nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "Sigmoid"),
    (Gated(), "cannot be traced"),
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)),
     "running statistics"),
])
def test_what_is_not_covered_is_refused_by_name(model, needle):
    model.eval()
    with pytest.raises(NotCertifiable, match=needle):
        certify(model, torch.rand(3, 4), torch.zeros(3, dtype=torch.long), eps=0.1)


def test_a_forward_hook_that_changes_the_output_is_refused():
    model = nn.Sequential(nn.Linear(4, 2)).eval()
    model.register_forward_hook(lambda _m, _i, out: out * 2)
    with pytest.raises(NotCertifiable, match="does not reproduce"):
        certify(model, torch.rand(3, 4), torch.zeros(3, dtype=torch.long), eps=0.1)


class Viewed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(72, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.size(0), -1)) + self.fc(h.reshape(h.shape[0], 72))


def test_a_view_to_the_batch_size_is_traced():
    model = Viewed().eval()
    x = torch.rand(4, 1, 8, 8)
    cert = certify(model, x, model(x).argmax(1), eps=0.0)
    assert cert.certified.all()  # eps 0: the bounds collapse to the logits, every prediction is its own label

"""eps_scale: the eps against each split's observed range and per-feature spread, and the two splits' agreement."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from attacks.base import Norm
from audit.checks import CHECKS
from audit.checks.base import RunCheck
from audit.checks.eps_scale import EpsScale, scale
from audit.config.policy import Threshold
from audit.core.result import Status
from audit.engine.judge import judge


def ctx_for(data, eps=0.1, norm="linf"):
    attacks = SimpleNamespace(norm=Norm(norm), eps=(eps / 2, eps, 2 * eps))
    return SimpleNamespace(config=SimpleNamespace(attacks=attacks), data=data, gated_eps=eps)


def scaled(data, train=1.0, test=1.0):
    return dataclasses.replace(data, x_train=data.x_train * train, x_test=data.x_test * test)


def test_it_is_a_registered_opt_in_run_check():
    assert isinstance(CHECKS["eps_scale"], RunCheck) and not CHECKS["eps_scale"].by_default


def test_the_ratios_follow_the_eps_and_the_datas_scale(digits):
    base = EpsScale().measure(ctx_for(digits))
    m = base.metrics
    assert m["eps_to_spread"] == pytest.approx(0.1 / base.details.train.spread)
    assert m["max_eps_to_range"] == pytest.approx(0.2 / (base.details.train.high - base.details.train.low))
    doubled = EpsScale().measure(ctx_for(digits, eps=0.2)).metrics
    assert doubled["eps_to_spread"] == pytest.approx(2 * m["eps_to_spread"])
    wider = EpsScale().measure(ctx_for(scaled(digits, 255.0, 255.0))).metrics   # the same eps on [0, 255] data
    assert wider["eps_to_spread"] == pytest.approx(m["eps_to_spread"] / 255)
    assert m["test_train_spread_ratio"] == pytest.approx(1.0, abs=0.25) and not base.details.notes


def test_a_test_split_scaled_differently_is_named(digits):
    m = EpsScale().measure(ctx_for(scaled(digits, test=3.0)))
    assert m.metrics["test_train_spread_ratio"] > 2
    assert any("spread" in n for n in m.details.notes) and "as widely as the training split" in m.summary


def test_spread_per_norm_and_constant_features():
    x = torch.zeros(100, 4)
    x[:, 0] = torch.linspace(0, 1, 100)
    x[:, 1] = torch.linspace(0, 2, 100)
    linf, l2 = scale(x, "linf"), scale(x, "l2")
    assert linf.constant_features == 2 and linf.rows == 100
    stds = x[:, :2].double().std(dim=0, unbiased=False)
    assert linf.spread == pytest.approx(float(stds.median()))
    assert l2.spread == pytest.approx(float(torch.sqrt((stds ** 2).sum())))


def test_the_policy_judges_it(digits):
    check = EpsScale()
    m = check.measure(ctx_for(digits, eps=5.0))
    assert judge(m, check, Threshold("eps_to_spread", warn_max=1.0), gating=True).status is Status.WARN
    ok = check.measure(ctx_for(digits, eps=0.05))
    assert judge(ok, check, Threshold("eps_to_spread", warn_max=1.0), gating=True).status is Status.PASS

"""Deployment variants: int8 (dynamic, static), half precision and pruning audited against their source; an
over-pruned deployment fails the policy's drop limit; a deployment whose gradients vanish is judged by the
attacks that still reach it (transfer, Square), never by its own vanishing gradients."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from attacks.pgd import pgd
from audit.config.data_checks import BackdoorConfig
from audit.config.deployments import DeploymentConfig
from audit.config.load import demo_config
from audit.config.sections import ModelConfig, TrainingConfig
from audit.core.errors import UsageError
from audit.methods.compression import dynamic_int8, prune_global, sparsity
from audit.methods.fake_quant import ste_surrogate

MASKED = '''
import torch
from audit.models.reference import SmallCNN


class Rounded(SmallCNN):
    """Inputs rounded to 8 grey levels before the network: zero input gradients everywhere (gradient masking)."""

    def forward(self, x):
        return super().forward(torch.round(x * 8) / 8)


def make():
    return Rounded()
'''


def config(tmp_path, deployments, factory="audit.models:build_small_cnn"):
    c = demo_config()
    return dataclasses.replace(
        c, base_dir=str(tmp_path), model=ModelConfig(factory=factory), defences=(), candidate="baseline",
        training=TrainingConfig(epochs=8, batch_size=64, lr=3e-3), backdoor=BackdoorConfig(),
        attacks=dataclasses.replace(c.attacks, pgd_steps=10, square_queries=150),
        checks=("clean_accuracy", "deployments"), deployments=tuple(deployments),
        data=dataclasses.replace(c.data, max_test=240))  # a stratified 240 of the 450 test points: half the time


def finding(result):
    return next(f for f in result.findings if f.check == "deployments")


def test_the_fake_quant_stand_in_computes_what_int8_computes_and_has_gradients(trained_cnn, digits):
    q, backend = dynamic_int8(trained_cnn)
    stand_in = ste_surrogate(trained_cnn, static=False)
    x, y = digits.x_test, digits.y_test
    with torch.no_grad():
        agree = (q(x).argmax(1) == stand_in(x).argmax(1)).float().mean()
    assert agree >= 0.97, agree
    xr = x[:32].clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(stand_in(xr), y[:32]).backward()
    assert xr.grad.abs().sum() > 0
    adv = pgd(stand_in, x[:200], y[:200], eps=0.1, steps=10, generator=torch.Generator().manual_seed(0)).x_adv
    with torch.no_grad():
        assert (q(adv).argmax(1) == y[:200]).float().mean() < (q(x[:200]).argmax(1) == y[:200]).float().mean() - 0.2


def test_global_pruning_reaches_the_sparsity_and_leaves_the_source_alone(trained_cnn):
    before = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    pruned = prune_global(trained_cnn, 0.5)
    assert abs(sparsity(pruned) - 0.5) < 0.02
    assert all(torch.equal(before[k], v) for k, v in trained_cnn.state_dict().items())


@pytest.mark.slow
def test_int8_and_half_pass_the_over_pruned_fails_and_the_table_has_the_trade_offs(tmp_path):
    from audit.engine.pipeline import run_audit
    deployments = [DeploymentConfig("int8", "dynamic_int8"), DeploymentConfig("int8-static", "static_int8"),
                   DeploymentConfig("bf16", "bf16"), DeploymentConfig("pruned-50", "prune", sparsity=0.5,
                                                                       finetune_epochs=1),
                   DeploymentConfig("pruned-95", "prune", sparsity=0.95)]
    result = run_audit(config(tmp_path, deployments))
    f = finding(result)
    rows = {r.name: r for r in f.details.rows}
    assert set(rows) == {d.name for d in deployments} and not f.details.failed
    assert f.status.value == "fail" and result.verdict.value == "no-go"
    assert rows["pruned-95"].robust_drop > 0.05 or rows["pruned-95"].clean_drop > 0.05
    assert f.metrics["worst_drop"] == max(max(r.clean_drop, r.robust_drop) for r in rows.values())
    for name in ("int8", "int8-static", "bf16", "pruned-50"):
        assert rows[name].clean_drop < 0.05, (name, rows[name].clean_drop)
    assert rows["int8"].size_ratio < 0.6 and rows["int8-static"].size_ratio < 0.6
    assert abs(rows["pruned-50"].sparsity - 0.5) < 0.02 and rows["pruned-95"].sparsity > 0.9
    for r in rows.values():  # the reported robust accuracy is the per-example worst case over every attack
        assert r.robust.value <= min(r.robust_by_attack.values()) + 1e-9
        assert 0 <= r.clean_p_value <= 1 and 0 <= r.robust_p_value <= 1
    assert any(s.name == "deployment pruned-95" for s in result.run_record.stages)


@pytest.mark.slow
def test_a_deployment_whose_gradients_vanish_is_judged_by_square_not_by_its_gradients(tmp_path):
    from audit.engine.pipeline import run_audit
    (tmp_path / "masked.py").write_text(MASKED, encoding="utf-8")
    result = run_audit(config(tmp_path, [DeploymentConfig("bf16", "bf16")], factory="masked:make"))
    row = finding(result).details.rows[0]
    white = row.robust_by_attack["white-box PGD"]
    assert white > row.robust_by_attack["Square"] + 0.05  # the gradients lie ...
    assert row.robust.value <= row.robust_by_attack["Square"]  # ... and the verdict does not believe them
    assert "gradient masking suspected" in row.note


def test_deployment_names_and_sources_are_checked_at_load(tmp_path):
    c = demo_config()
    with pytest.raises(UsageError, match="deployments"):
        dataclasses.replace(c, deployments=(DeploymentConfig("pgd_at", "bf16"),)).validate("config")
    with pytest.raises(UsageError, match="source"):
        dataclasses.replace(c, deployments=(DeploymentConfig("x", "bf16", source="nope"),)).validate("config")
    with pytest.raises(UsageError, match="method"):
        DeploymentConfig("x", "int4").validate("deployments[0]")


def test_a_deployment_that_cannot_be_built_is_named_and_never_passes(tmp_path, monkeypatch):
    import audit.checks.deployments as dep
    from audit.engine.pipeline import run_audit

    def broken(model, calibration):
        raise RuntimeError("symbolically traced variables cannot be used as inputs to control flow")
    monkeypatch.setattr(dep, "static_int8", broken)
    cfg = config(tmp_path, [DeploymentConfig("int8-static", "static_int8")])
    result = run_audit(dataclasses.replace(cfg, training=TrainingConfig(epochs=2, batch_size=64, lr=3e-3)))
    f = finding(result)
    assert "int8-static" in f.details.failed and "control flow" in f.details.failed["int8-static"]
    assert f.status.value == "warn" and "failed" in f.summary

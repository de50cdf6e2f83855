"""The threat model, declared once, drives the grid, the defences' eps and the policy's robustness threshold; a
config without it keeps the generic defaults and says so."""
from __future__ import annotations

import pytest

from audit.config import AuditConfig, DefenceConfig, ThreatModelConfig
from audit.config.policy import load_policy
from audit.core.errors import UsageError
from audit.core.metrics import same_eps
from audit.engine import configure
from audit.engine.pipeline import check_policy_fits


def load(tmp_path, text):
    p = tmp_path / "advaudit.toml"
    p.write_text(text)
    return configure.load(p)


def test_a_declared_threat_model_drives_the_grid_the_defences_and_the_policy(tmp_path):
    cfg = load(tmp_path, '[threat_model]\neps = 0.0313725\n[[defences]]\nname = "at"\n')
    assert 0.0313725 in cfg.attacks.eps and len(cfg.attacks.eps) == 5 and cfg.attacks.norm.value == "linf"
    assert list(cfg.attacks.eps) == sorted(cfg.attacks.eps)
    assert cfg.defences[0].eps == 0.0313725
    policy = load_policy("default").for_threat(cfg.threat_model)
    assert same_eps(policy.thresholds["robustness"].eps, 0.0313725)
    check_policy_fits(policy, cfg)  # the default policy fits an 8/255 grid with no policy file of the user's


def test_explicit_keys_override_the_threat_model_and_reloading_is_stable(tmp_path):
    cfg = load(tmp_path, '[threat_model]\neps = 0.5\nnorm = "l2"\n[attacks]\neps = [0.25, 0.5]\n'
                         '[[defences]]\nname = "at"\neps = 0.25\n')
    assert cfg.attacks.eps == (0.25, 0.5) and cfg.attacks.norm.value == "l2" and cfg.defences[0].eps == 0.25
    from audit.core.serde import from_data, to_data
    data = to_data(cfg)
    data.pop("base_dir")
    assert from_data(AuditConfig, data) == AuditConfig(**{**cfg.__dict__, "base_dir": ""})


def test_without_a_threat_model_the_generic_defaults_stay():
    cfg = AuditConfig(defences=(DefenceConfig(name="at"),))
    assert cfg.attacks.eps == (0.025, 0.05, 0.1, 0.15, 0.2) and cfg.defences[0].eps == 0.1
    assert not cfg.threat_model.declared and cfg.threat_model.label() == "not declared"
    assert load_policy("default").for_threat(cfg.threat_model).thresholds["robustness"].eps == 0.1


@pytest.mark.parametrize("text,fragment", [
    ('[threat_model]\neps = 0.3\nnorm = "linf"\n[attacks]\nnorm = "l2"\n', "contradicts threat_model.norm"),
    ('[threat_model]\neps = -0.1\n', "must be > 0"),
    ('[threat_model]\neps = nan\n', "not a finite number"),
    ('[threat_model]\neps = 0.3\nknowledge = "grey"\n', "knowledge"),
])
def test_bad_threat_models_are_usage_errors(tmp_path, text, fragment):
    with pytest.raises(UsageError, match=fragment):
        load(tmp_path, text)


def test_the_grid_always_contains_the_threat_eps_exactly():
    for eps in (0.3, 8 / 255, 4 / 255, 0.5, 1e-3):
        assert eps in ThreatModelConfig(eps=eps).grid()

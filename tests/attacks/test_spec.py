"""The attack registry: one ``AttackSpec`` per attack is the only list; its parameter class holds every setting and
its config key; a setting an attack does not know fails, naming the valid ones."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from attacks import ATTACKS, AttackSpec, Ball
from attacks.pgd import PGDParams, projected_gradient_descent
from attacks.spec import config_keys, register
from audit.config import AttackConfig
from audit.core.errors import UsageError
from audit.core.serde import from_data


def tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    g = torch.Generator().manual_seed(0)
    return model, torch.rand(6, 1, 8, 8, generator=g), torch.arange(6) % 10


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_spec_is_complete_and_its_config_keys_exist(name):
    spec = ATTACKS[name]
    assert isinstance(spec, AttackSpec) and spec.name == name and spec.label
    assert dataclasses.is_dataclass(spec.params) and spec.params.__dataclass_params__.frozen
    assert all(hasattr(AttackConfig(), key) for key in config_keys(spec.params).values())
    assert spec.describe(spec.params()).startswith(spec.label)
    fb, fwd = spec.cost(spec.params())
    assert fb + fwd > 0
    assert set(AttackConfig(attacks=(name,)).params(name)) == set(config_keys(spec.params))


def test_the_registry_knows_what_each_attack_needs():
    assert [n for n, s in ATTACKS.items() if s.score_based] == ["square"]
    assert [n for n, s in ATTACKS.items() if s.images_only] == ["square"]
    assert {n: s.min_classes for n, s in ATTACKS.items() if s.min_classes > 2} == {"apgd_dlr": 3}
    assert [n for n, s in ATTACKS.items() if s.gradient_ascent] == ["pgd", "pgd_t", "apgd_ce", "apgd_dlr", "apgd_t"]


def test_an_unknown_setting_fails_and_names_the_valid_ones():
    model, x, y = tiny()
    with pytest.raises(TypeError, match=r"'stepz'.*valid: eps, norm, clip, steps, restarts, early_stop"):
        ATTACKS["pgd"](model, x, y, eps=0.1, stepz=3)
    with pytest.raises(TypeError, match="'steps'"):
        ATTACKS["fgsm"](model, x, y, eps=0.1, steps=3)
    with pytest.raises(TypeError):
        PGDParams(stepz=3)


def test_a_name_registered_twice_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        register(dataclasses.replace(ATTACKS["pgd"]))


def test_an_unknown_attacks_key_fails_at_config_load_naming_the_valid_keys():
    with pytest.raises(UsageError, match="pgd_stepz.*valid keys:.*pgd_steps"):
        from_data(AttackConfig, {"pgd_stepz": 3}, "attacks")


def test_the_keyword_form_is_the_typed_call():
    model, x, y = tiny()
    a = ATTACKS["pgd"](model, x, y, eps=0.1, norm="l2", steps=4, generator=torch.Generator().manual_seed(1))
    b = projected_gradient_descent(model, x, y, Ball(0.1, "l2"), PGDParams(steps=4),
                                   generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.x_adv, b.x_adv) and a.example_passes == b.example_passes == 4 * x.shape[0]


def test_early_stop_needs_the_first_adversarial_iterate():
    with pytest.raises(ValueError, match="keep_adversarial"):
        PGDParams(early_stop=True, keep_adversarial=False)

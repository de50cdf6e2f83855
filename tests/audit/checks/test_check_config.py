"""Each check's settings are its [checks.<id>] table, owned by its Config: the older forms load the same, --set
works in both, the init template is generated from the Configs, and mistakes name the key and the valid ones."""
from __future__ import annotations

import dataclasses
import typing
from importlib import resources
from pathlib import Path

import pytest

from audit.checks import CHECKS
from audit.checks.base import NoSettings, settings
from audit.checks.config_template import check_tables, with_check_tables
from audit.config import AuditConfig, config_from_data
from audit.config.audit_config import check_sections
from audit.core.errors import UsageError

HERE = Path("/nonexistent-base")
WITH_SETTINGS = [c for c in CHECKS.values() if c.Config is not NoSettings]


def load(data: dict, overrides=()) -> AuditConfig:
    return config_from_data(data, HERE, list(overrides))


def test_every_settings_table_belongs_to_a_check_and_every_checks_config_has_its_table():
    hints = typing.get_type_hints(AuditConfig)
    assert {c.id for c in WITH_SETTINGS} == set(check_sections())
    for c in WITH_SETTINGS:
        assert hints[c.id] is c.Config and c.Config.__dataclass_params__.frozen
        assert isinstance(settings(c, AuditConfig()), c.Config)


def test_the_shipped_init_template_is_the_generated_one_and_loads_to_the_defaults(tmp_path):
    shipped = resources.files("audit.config").joinpath("init_template.toml").read_text(encoding="utf-8")
    assert with_check_tables(shipped) == shipped, "stale: run python tools/write_schema.py"
    for c in WITH_SETTINGS:
        assert f"[checks.{c.id}]" in check_tables()
    path = tmp_path / "advaudit.toml"
    path.write_text(shipped, encoding="utf-8")
    from audit.config import load_config
    assert dataclasses.replace(load_config(path), base_dir="") == AuditConfig()


@pytest.mark.parametrize("check", WITH_SETTINGS, ids=lambda c: c.id)
def test_the_older_and_the_new_form_load_the_same(check):
    key = dataclasses.fields(check.Config)[0].name
    value = getattr(check.Config(), key)
    changed = value * 2 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    old = load({"checks": [check.id], check.id: {key: changed}})
    new = load({"checks": {"enabled": [check.id], check.id: {key: changed}}})
    assert old == new and old.checks == (check.id,)
    assert getattr(settings(check, new), key) == changed


def test_set_overrides_work_in_both_forms_whatever_form_the_file_has():
    c = WITH_SETTINGS[0]
    key = next(f.name for f in dataclasses.fields(c.Config) if f.type in (int, "int"))
    for data in ({c.id: {}}, {"checks": {c.id: {}}}, {}):
        for text in (f"{c.id}.{key}=7", f"checks.{c.id}.{key}=7"):
            assert getattr(settings(c, load(data, [text])), key) == 7
    assert load({"checks": ["a"]}, ['checks.enabled=["b"]']).checks == ("b",)
    assert load({"checks": {"enabled": ["a"]}}, ['checks=["b"]']).checks == ("b",)


def test_mistakes_name_the_key_and_the_valid_ones():
    c = WITH_SETTINGS[0]
    with pytest.raises(UsageError, match=r"checks\.nope: unknown key; valid keys: enabled, .*" + c.id):
        load({"checks": {"nope": {}}})
    with pytest.raises(UsageError, match=f"checks.{c.id}: given twice"):
        load({"checks": {c.id: {}}, c.id: {}})
    with pytest.raises(UsageError, match=f"{c.id}.no_such_setting: unknown key; valid keys: "):
        load({"checks": {c.id: {"no_such_setting": 1}}})
    with pytest.raises(UsageError, match="checks: expected a table"):
        load({"checks": 3})


def test_a_written_out_config_loads_back_the_same():
    from audit.core.serde import to_data
    c = WITH_SETTINGS[-1]
    key = dataclasses.fields(c.Config)[0].name
    cfg = load({"checks": {"enabled": [c.id], c.id: {key: getattr(c.Config(), key)}}})
    data = to_data(cfg)
    data.pop("base_dir")
    assert load(data) == cfg

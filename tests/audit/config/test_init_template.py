"""The init template (audit/config/init_template.toml) cannot drift from the code: it is the generator's output byte
for byte, uncommenting (or removing) any of its key lines leaves the loaded config unchanged (so every value shown
is the code's default, checked by the loader, not by the generator), a key without a default is marked as an
example, every config key has a line, and the preset comments state the presets' values."""
from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path

import pytest

from attacks import ATTACKS
from attacks.presets import PRESETS
from audit.checks.config_template import END, entries, examples, render_template
from audit.config import AuditConfig, config_from_data
from audit.config.audit_config import check_sections
from audit.config.load import read_toml

SHIPPED = resources.files("audit.config").joinpath("init_template.toml").read_bytes().decode("utf-8")
LINES = SHIPPED.splitlines()
ARRAYS = ("defences", "deployments")
HEADER = re.compile(r"^# \[\[(?P<name>[a-z]+)\]\]$")


def load(lines: list[str], tmp_path: Path) -> AuditConfig:
    path = tmp_path / "advaudit.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dataclasses.replace(config_from_data(read_toml(path), tmp_path), base_dir="")


def uncomment(lines: list[str], *indices: int) -> list[str]:
    out = list(lines)
    for i in indices:
        assert out[i].startswith("# "), out[i]
        out[i] = out[i][2:]
    return out


def array_table(name: str) -> tuple[int, list[int]]:
    """The commented header of ``[[name]]`` and the lines of its keys without a default (the examples)."""
    header = next(i for i, line in enumerate(LINES) if HEADER.match(line) and HEADER.match(line)["name"] == name)
    shown = examples()
    return header, [e.index for e in entries(SHIPPED) if e.section == name and (name, e.key) in shown]


def test_the_shipped_template_is_the_generated_one():
    assert render_template(SHIPPED) == SHIPPED, "stale: run python tools/write_schema.py"


def test_the_generator_puts_back_a_hand_edited_value_and_preset_comment():
    edited = SHIPPED.replace("# apgd_steps = 100", "# apgd_steps = 50", 1).replace("standard 5000", "standard 500")
    assert edited != SHIPPED and render_template(edited) == SHIPPED


def test_the_template_as_written_loads_to_the_defaults(tmp_path):
    assert load(LINES, tmp_path) == AuditConfig()


def test_uncommenting_or_removing_any_key_line_changes_nothing(tmp_path):
    """Every value shown is the key's default as the loader resolves it; only the marked examples differ."""
    base = load(LINES, tmp_path)
    tables = {name: array_table(name) for name in ARRAYS}
    with_tables = {name: uncomment(LINES, h, *ex) for name, (h, ex) in tables.items()}
    table_base = {name: load(lines, tmp_path) for name, lines in with_tables.items()}
    checked = 0
    for e in entries(SHIPPED):
        if e.section in ARRAYS:
            if e.index in tables[e.section][1]:
                continue
            after, before = load(uncomment(with_tables[e.section], e.index), tmp_path), table_base[e.section]
        elif (e.section, e.key) in examples():
            assert e.commented and "example" in LINES[e.index], LINES[e.index]
            continue
        elif e.commented:
            after, before = load(uncomment(LINES, e.index), tmp_path), base
        else:
            after, before = load(LINES[:e.index] + LINES[e.index + 1:], tmp_path), base
        assert after == before, f"line {e.index + 1} ({LINES[e.index].strip()}) is not the default"
        checked += 1
    assert checked >= 80, checked


def test_only_keys_without_a_default_are_examples():
    hints = {f.name: f.type for f in dataclasses.fields(AuditConfig)}
    from audit.config import DefenceConfig
    from audit.config.deployments import DeploymentConfig
    classes = {"defences": DefenceConfig, "deployments": DeploymentConfig}
    for section, key in examples():
        cls = classes.get(section) or type(getattr(AuditConfig(), section))
        f = next(f for f in dataclasses.fields(cls) if f.name == key)
        assert f.default is dataclasses.MISSING or f.default is None, (section, key, hints.get(section))


def test_every_example_is_valid_config(tmp_path):
    commented = [e.index for e in entries(SHIPPED) if e.commented]
    headers = [i for i, line in enumerate(LINES) if HEADER.match(line)]
    cfg = load(uncomment(LINES, *commented, *headers), tmp_path)
    assert cfg.threat_model.declared and [d.name for d in cfg.defences] == ["pgd_at"] and cfg.deployments


def test_every_config_key_has_a_line():
    from audit.config import DefenceConfig
    from audit.config.deployments import DeploymentConfig
    shown = {(e.section, e.key) for e in entries(SHIPPED)}
    cfg = AuditConfig()
    skip = ("checks", "base_dir", *ARRAYS, *check_sections())   # the [checks] block has its own test
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in skip:
            continue
        if dataclasses.is_dataclass(value):
            missing = {g.name for g in dataclasses.fields(value)} - {k for s, k in shown if s == f.name}
            assert not missing, f"[{f.name}] lacks a line for {sorted(missing)}"
        else:
            assert ("", f.name) in shown, f.name
    for name, cls in zip(ARRAYS, (DefenceConfig, DeploymentConfig), strict=True):
        assert {g.name for g in dataclasses.fields(cls)} <= {k for s, k in shown if s == name}, name
    assert SHIPPED.index("[checks]") < SHIPPED.index(END)


@pytest.mark.parametrize("key", sorted(k for k in PRESETS["standard"] if k not in ("attacks", "chain")))
def test_each_preset_setting_line_states_every_presets_value(key):
    line = comment_of(f"# {key} = ")
    stated = dict(re.findall(r"(\w+) ([\d.]+)", line.split("by preset:")[1]))
    assert stated == {name: str(p[key]) for name, p in PRESETS.items()}, line


def comment_of(start: str) -> str:
    """The line starting with ``start`` and its comment's continuation lines, joined."""
    i = next(i for i, line in enumerate(LINES) if line.startswith(start))
    j = i + 1
    while j < len(LINES) and re.match(r"^[# ] {26}# ", LINES[j]):
        j += 1
    return " ".join(line.split("# ")[-1] for line in LINES[i:j])


def test_the_attack_lines_name_every_attack_and_each_presets_attacks():
    for name in ATTACKS:
        assert re.search(rf"\b{name}\b", comment_of("# attacks = ")), name
    preset = comment_of("preset = ")
    for name, p in PRESETS.items():
        said = preset.split(f'"{name}":')[1].split(";")[0].split(".")[0]
        named = [a for a in ATTACKS if re.search(rf"(?<![\w-]){re.escape(ATTACKS[a].label)}(?![\w-])", said)]
        assert sorted(named) == sorted(set(p["attacks"])), (name, said)

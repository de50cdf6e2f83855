"""The init template (audit/config/init_template.toml) is generated from the code by ``python tools/write_schema.py``
(``render_template``), and a test fails when the shipped file differs, so it cannot drift from the code:

- the ``[checks]`` block, between the markers, from every check's ``Config`` (a field's comment is its
  ``metadata={"doc": ...}``; a table's is the first sentence of its Config's docstring);
- the value of every other ``key = value`` line, commented or not: the value the key takes when it is left out
  (``defaults``), so uncommenting a line changes nothing, except the lines of keys without such a value, whose
  comment says "example" (``examples``);
- the comments that state facts of the code (``generated_comments``): the presets and their settings, the attack
  registry, the shipped policies, the data sources.

The rest (the hand-written comments, the order of the keys) is the file's own; a config key the file lacks fails a
test. ``advaudit init`` copies the file as it is (no import of this module, nor of torch)."""
from __future__ import annotations

import dataclasses
import enum
import json
import re
import textwrap
from typing import Any

import tomllib

from audit.checks.base import NoSettings

BEGIN = "# --- [checks]: generated from each check's Config by tools/write_schema.py; edit the Configs, not this ---"
END = "# --- end of [checks] ---"
COMMENT_AT = 27   # the template's comment column


def toml_value(v) -> str:
    if isinstance(v, enum.Enum):
        v = v.value
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}" if v else "{}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _line(text: str, comment: str) -> str:
    return f"{text:<{COMMENT_AT - 1}} # {comment}" if comment else text


def _default(f: dataclasses.Field) -> Any:
    """A settings field's default value (every ``Config`` field has a default or a default factory)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING, f.name
    return f.default_factory()


def check_tables() -> str:
    """``[checks]`` with ``enabled``, then one ``[checks.<id>]`` table of defaults per check that has settings."""
    from audit.checks import CHECKS  # the registry imports every module of the package, this one too
    lines = [BEGIN, _line("[checks]", "which checks run, and each check's settings"),
             _line("enabled = []", "empty = every check on by default; e.g. [\"clean_accuracy\", \"robustness\"]")]
    for check in CHECKS.values():
        if check.Config is NoSettings:
            continue
        doc = re.split(r"\.\s|:\s|\.$", " ".join((check.Config.__doc__ or "").split()))[0].replace("``", "")
        lines += ["", _line(f"[checks.{check.id}]", doc)]
        for f in dataclasses.fields(check.Config):
            lines.append(_line(f"{f.name} = {toml_value(_default(f))}", f.metadata.get("doc", "")))
    return "\n".join(lines + [END])


def with_check_tables(template: str) -> str:
    """``template`` with its generated block replaced by the current one."""
    head, sep, rest = template.partition(BEGIN)
    _old, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError("the init template has no generated [checks] block (its markers are missing)")
    return head + check_tables() + tail


# --- the rest of the template: every key line's value, and the comments that state facts of the code ---

EXAMPLE = "example"   # the comment of a line whose value is an example (the key has no default to show)
KEY_LINE = re.compile(r"^(?P<hash># )?(?P<key>[a-z][a-z0-9_]*) = (?P<rest>.*)$")
HEADER = re.compile(r"^(?:# )?\[\[?(?P<name>[a-z_]+)\]\]?(?:\s|$)")
CONTINUATION = re.compile(rf"^[# ] {{{COMMENT_AT - 1}}}# ")
WIDTH = 118


@dataclasses.dataclass(frozen=True)
class Entry:
    """One ``key = value`` line of the template (``commented``: written ``# key = value``)."""

    section: str   # "" for the top level; an array table ([[defences]]) by its name
    key: str
    commented: bool
    value: Any
    index: int     # its line number, from 0
    text: str      # the value as written


def _split(rest: str) -> tuple[Any, str] | None:
    """(the TOML value, its text) at the start of ``rest`` (what follows is its comment); None: no value."""
    for i in [i for i, c in enumerate(rest) if c == "#"] + [len(rest)]:
        try:
            return tomllib.loads(f"v = {rest[:i].strip()}")["v"], rest[:i].rstrip()
        except tomllib.TOMLDecodeError:
            continue
    return None


def entries(template: str) -> list[Entry]:
    """Every key line outside the generated [checks] block, with its section."""
    out, section, generated = [], "", False
    for i, line in enumerate(template.splitlines()):
        generated = (generated or line == BEGIN) and line != END
        header, key = HEADER.match(line), KEY_LINE.match(line)
        if generated:
            continue
        if header:
            section = header.group("name")
        elif key and (split := _split(key.group("rest"))) is not None:
            out.append(Entry(section, key.group("key"), bool(key.group("hash")), split[0], i, split[1]))
    return out


def plain(v: Any) -> Any:
    """A default as TOML reads it back: enums as their value, tuples as lists."""
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    return v


def array_tables() -> tuple[str, str]:
    """The names of the array tables: the defended variants' and the deployments' (the config fields holding
    tuples of ``DefenceConfig`` and of ``DeploymentConfig``)."""
    from audit.config import AuditConfig
    names = {str(f.type): f.name for f in dataclasses.fields(AuditConfig)}
    return names["tuple[DefenceConfig, ...]"], names["tuple[DeploymentConfig, ...]"]


def defaults() -> dict[str, dict[str, Any]]:
    """Section -> key -> the value the key takes when the template's line is left out (resolved as the template
    resolves it: no threat model declared, the default preset); ``MISSING`` for a key without a default."""
    from audit.config import AuditConfig, DefenceConfig
    from audit.config.audit_config import check_sections
    from audit.config.deployments import DeploymentConfig
    cfg = AuditConfig(defences=(DefenceConfig(name="x"),))
    defences, deployments = array_tables()
    tables = (defences, deployments, "checks", "base_dir") + check_sections()
    out: dict[str, dict[str, Any]] = {"": {}}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = {g.name: getattr(value, g.name) for g in dataclasses.fields(value)}
        elif f.name not in tables:
            out[""][f.name] = value
    out[defences] = {g.name: getattr(cfg.defences[0], g.name) for g in dataclasses.fields(DefenceConfig)}
    out[defences]["name"] = dataclasses.MISSING
    out[deployments] = {g.name: g.default for g in dataclasses.fields(DeploymentConfig)}
    return out


def examples() -> dict[tuple[str, str], tuple[Any, str]]:
    """(section, key) -> (the example value, its comment) for the keys with nothing to show: no default, or one
    (None) that leaves a feature off."""
    from attacks.recipes import auto_warmup
    from audit.config.deployments import DEPLOYMENT_METHODS
    from audit.config.policy import EvidenceRule
    from audit.config.sections import TrainingConfig
    epochs, (defences, deployments) = TrainingConfig().epochs, array_tables()
    return {
        ("threat_model", "eps"): (round(8 / 255, 7), f"{EXAMPLE}: 8/255 of a [0, 1] image; left out, no threat "
                                                     f"model is declared"),
        ("data", "max_test"): (EvidenceRule().min_test_points, f"{EXAMPLE}: audit a stratified, seeded subsample "
                               f"of this many test points (default: all of them; a sign-off needs "
                               f"{EvidenceRule().min_test_points})"),
        (defences, "name"): ("pgd_at", f"{EXAMPLE}: the variant's name (letters, digits, '.', '_', '-')"),
        (defences, "warmup_epochs"): (auto_warmup(epochs), f"{EXAMPLE}; left out: linear eps warm-up over "
                                        f"{auto_warmup(100):g}% of the epochs ({auto_warmup(epochs):g} of {epochs})"),
        (deployments, "name"): ("int8", f"{EXAMPLE}: the deployed form's name"),
        (deployments, "method"): (DEPLOYMENT_METHODS[0], f"{EXAMPLE}; "
                                    f"{', '.join(map(json.dumps, DEPLOYMENT_METHODS))}"),
    }


def _by_preset(key: str) -> str:
    from attacks.presets import PRESETS
    return "by preset: " + ", ".join(f"{name} {toml_value(p[key])}" for name, p in PRESETS.items())


def generated_comments() -> dict[tuple[str, str], str]:
    """(section, key) -> the comment stating what the code says about it (presets, registries, policies)."""
    from attacks import ATTACKS
    from attacks.presets import DEFAULT_PRESET, PRESETS
    from attacks.spec import MultiTarget
    from audit.config.policy import load_policy
    from audit.config.threat import LEGACY_DEFENCE_EPS, SPREAD
    from audit.config.tracking import DEFAULT_STORE
    from audit.data.sources import BUILTIN, SOURCES
    label = {name: spec.label for name, spec in ATTACKS.items()}
    presets = "; ".join(f'"{name}": {", ".join(label[a] for a in p["attacks"] if a not in p["chain"])}'
                        + (f', and chained {", ".join(label[a] for a in p["chain"])}' if p["chain"] else "")
                        for name, p in PRESETS.items())
    sign_off, screening = load_policy("default").evidence, load_policy("screening").evidence
    targeted = ", ".join(n for n, s in ATTACKS.items() if issubclass(s.params, MultiTarget))
    docs = {"n_targets": f"target classes of {targeted}", "probe_points": "subsample for the validity probes",
            "square_points": "the black-box cross-check's probe points (C6)",
            "square_p_init": "Square's initial window share", "square_queries": "Square's queries"}
    out = {("attacks", k): (f"{docs[k]}; " if k in docs else "") + _by_preset(k)
           for k in PRESETS[DEFAULT_PRESET] if k not in ("attacks", "chain")}
    return out | {
        ("", "policy"): f'"default" (shipped, a {sign_off.purpose}; for a GO, {sign_off.describe()}; else '
                        f'INCOMPLETE), "screening" (shipped: the same thresholds, labelled "screening, not a '
                        f'sign-off"; {screening.describe()}) or a path to your policy TOML (its SHA-256 is reported)',
        ("tracking", "tracking_uri"): f'"" = {DEFAULT_STORE} (a SQLite database in the working directory); or '
                                      f'"sqlite:///path/runs.db", "http://host:5000"',
        ("data", "source"): f'built-in: {", ".join(map(json.dumps, BUILTIN))}; your data: '
                            f'{", ".join(json.dumps(s) for s in SOURCES if s not in BUILTIN)}',
        ("attacks", "preset"): f"{presets}. A key set below overrides the preset; commented, it shows the "
                               f"{DEFAULT_PRESET!r} value",
        ("attacks", "attacks"): f"the preset's; any of {', '.join(ATTACKS)}",
        ("attacks", "chain"): "run as AutoAttack runs them: each on the points the earlier ones left robust",
        ("attacks", "norm"): "left out: the threat model's norm",
        ("attacks", "eps"): f"left out: {', '.join(f'{s:g}' for s in SPREAD)} x the threat eps; without a threat "
                            f"model, this grid",
        (array_tables()[0], "eps"): f"left out: the threat model's eps ({LEGACY_DEFENCE_EPS:g} without one)",
    } | {k: v[1] for k, v in examples().items()}


def _with_comment(head: str, comment: str, commented: bool) -> list[str]:
    """``head`` with ``comment`` wrapped at the template's comment column."""
    extra = max(len(head) - (COMMENT_AT - 1), 0)   # a long head moves the first line's comment right
    lines = textwrap.wrap(comment, WIDTH - COMMENT_AT - 2, initial_indent="\0" * extra, break_on_hyphens=False)
    lines[0] = lines[0][extra:]
    more = ("#" if commented else " ") + " " * (COMMENT_AT - 1) + "# "
    return [_line(head, lines[0])] + [more + line for line in lines[1:]]


def _rewrite(line: str, entry: Entry, value: Any, comment: str | None) -> list[str]:
    """The key line with ``value``, and ``comment`` (None: its own comment, kept at its column)."""
    head = ("# " if entry.commented else "") + f"{entry.key} = {toml_value(value)}"
    if comment is not None:
        return _with_comment(head, comment, entry.commented)
    prefix = ("# " if entry.commented else "") + f"{entry.key} = {entry.text}"
    tail = line[len(prefix):]
    if not tail.strip():
        return [head]
    column = len(prefix) + len(tail) - len(tail.lstrip())
    return [head + " " * max(column - len(head), 1) + tail.lstrip()]


def render_template(template: str) -> str:
    """``template`` with every key line's value the code's (or its example), the comments of
    ``generated_comments`` rewritten, and the [checks] block regenerated."""
    template = with_check_tables(template)
    values, shown, comments = defaults(), examples(), generated_comments()
    lines, out, skip = template.splitlines(), [], set()
    by_line = {e.index: e for e in entries(template)}
    for i, line in enumerate(lines):
        if i in skip:
            continue
        e = by_line.get(i)
        if e is None:
            out.append(line)
            continue
        value = shown[(e.section, e.key)][0] if (e.section, e.key) in shown else values[e.section][e.key]
        comment = comments.get((e.section, e.key))
        if comment is not None:
            j = i + 1
            while j < len(lines) and CONTINUATION.match(lines[j]):
                skip.add(j)
                j += 1
        out += _rewrite(line, e, value, comment)
    return "\n".join(out) + ("\n" if template.endswith("\n") else "")

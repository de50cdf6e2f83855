"""The README says only what is true: every repository path it names exists, every `advaudit` command line it
shows parses (each flag is the command's), its exit-code table is the CLI's, and the identifiers it quotes (the
attestation's predicate type, the schema path, the policy names) are the ones the code uses; every number it states
about the code (counts of checks, validity checks and subcategories, preset settings, defaults, bounds, limits) is
computed from the code here; every TOML block loads with the config or policy loader, and the blocks that state
defaults state the code's."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import load_toml_block

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOP = ("audit/", "attacks/", "reports/", "templates/", "tests/", "examples/", "bench/", "tools/", ".ci/", "docs/")


def quoted_paths() -> set[str]:
    """Repository paths in backticks (``audit/evidence/predicate.schema.json``, ``examples/ci/``)."""
    out = set()
    for token in re.findall(r"`([^`\n]+)`", README):
        token = token.strip()
        if token.startswith(TOP) and " " not in token and not any(c in token for c in "*<>{}$="):
            out.add(token.split("::")[0].rstrip(".,:;)"))
    return out


def test_the_readme_names_some_paths_and_the_collector_sees_a_missing_one():
    paths = quoted_paths()
    assert len(paths) >= 10, paths
    assert not (ROOT / "audit/no_such_module.py").exists()  # the check below can fail


@pytest.mark.parametrize("path", sorted(quoted_paths()))
def test_every_path_the_readme_names_exists(path):
    assert (ROOT / path).exists(), f"README names {path}, which is not in the repository"


def command_lines() -> list[list[str]]:
    """Every line of a sh block that runs advaudit (``advaudit ...`` or ``.venv/bin/advaudit ...``), as argv."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            m = re.match(r"^(?:\.venv/bin/)?advaudit\s+(.*)$", line)
            if m and "..." not in line:
                lines.append(shlex.split(m.group(1)))
    return lines


def _concrete(argv: list[str]) -> list[str]:
    """A synopsis line made runnable for the parser: optional groups ``[--x V]`` opened, ``a|b`` choices taken
    at their first alternative, placeholders kept as values."""
    out = []
    for a in argv:
        a = a.strip("[]")
        if "|" in a:
            a = a.split("|")[0]
        if a:
            out.append("0" if a == "N" else a)
    return out


def test_the_readme_shows_command_lines():
    assert len(command_lines()) >= 8


@pytest.mark.parametrize("argv", command_lines(), ids=lambda a: " ".join(a)[:60])
def test_every_command_line_in_the_readme_parses(argv):
    from audit.cli import build_parser
    from audit.core.errors import UsageError
    argv = _concrete(argv)
    try:
        build_parser().parse_args(argv)
    except UsageError as e:
        pytest.fail(f"README shows `advaudit {' '.join(argv)}`, which the CLI refuses: {e}")


def test_the_exit_code_table_is_the_clis():
    from audit import cli
    rows = dict(re.findall(r"^\| (\d) \| (.+?) \|$", README, flags=re.M))
    codes = {cli.EXIT_OK, cli.EXIT_GATE, cli.EXIT_USAGE, cli.EXIT_INTERNAL, cli.EXIT_INCOMPLETE}
    assert set(map(int, rows)) >= codes, rows
    for code in map(int, rows):
        assert f"{code} " in cli.EXIT_CODES, f"README documents exit code {code}; the CLI's help does not"
    assert rows["4"].startswith("INCOMPLETE") and rows["1"].startswith("NO-GO") and rows["0"].startswith("GO")


def test_the_identifiers_the_readme_quotes_are_the_codes():
    from audit.config.policy import BUILTIN
    from audit.evidence.signing import PREDICATE_TYPE
    assert f"`{PREDICATE_TYPE}`" in README
    for name in BUILTIN:  # the shipped policies, as --policy takes them
        assert re.search(rf"--policy [^`\n]*\b{name}\b", README), name


# --- every number the README states about the code, computed from the code ---

TEXT = " ".join(README.split())   # sentences wrap: match across line breaks


def _pct(share: float) -> str:
    return f"{share * 100:g}"


def _claims() -> dict[str, tuple[str, object]]:
    """name -> (a pattern of the README with groups, the code's values of those groups, as text)."""
    from math import sqrt

    from attacks import ATTACKS
    from attacks.presets import PRESETS
    from attacks.recipes import auto_warmup
    from audit.api.tracking_check import TIMEOUT
    from audit.checks import CHECKS
    from audit.checks.validity import VALIDITY_CHECKS
    from audit.config import demo_config
    from audit.config.data_checks import BackdoorConfig, LabelIssuesConfig, LeakageConfig
    from audit.config.names import DISPLAY_LIMIT, NAME_RULE
    from audit.config.policy import CompareRule, EvidenceRule, load_policy
    from audit.config.threat import LEGACY_GRID, SPREAD
    from audit.core.result import SCHEMA_VERSION
    from audit.data.limits import AVAILABLE_SHARE
    from audit.data.sources.folder import MAX_SIDE
    from audit.engine.execution.ray_cluster import CONNECT_TIMEOUT
    from audit.engine.results_io import MAX_BYTES, MAX_DEPTH
    from audit.evidence.attestation import SIGNOFF_LIMIT
    from audit.evidence.trust import MAX_TRUSTED_BYTES
    from audit.frameworks.controls import subcategories
    from audit.methods.art_adapter import fewest_significant, points_to_detect
    from audit.methods.corruptions import IMAGE, SEVERITIES
    from reports.markdown import LIMIT
    quick, std, thorough = PRESETS["quick"], PRESETS["standard"], PRESETS["thorough"]
    art, policy = CHECKS["art_agreement"].Config(), load_policy("default")
    labels = [ATTACKS[a].label for a in std["chain"]]
    n_test, minimum = EvidenceRule().min_test_points, EvidenceRule().min_test_points
    assert TIMEOUT == CONNECT_TIMEOUT
    backdoor, leakage = BackdoorConfig(), LeakageConfig()
    return {
        "validity checks": (r"\b(\d+) validity checks", (str(len(VALIDITY_CHECKS)),)),
        "validity ids": (r"\bC1-C(\d+)\b", (str(len(VALIDITY_CHECKS)),)),
        "subcategories": (r"all (\d+) subcategories", (str(len(subcategories())),)),
        "schema version": (r"results\.json \(schema (\d+\.\d+)\)", (SCHEMA_VERSION,)),
        "standard set": (r"AutoAttack's standard set, ([\w-]+(?:, [\w-]+)*) and ([\w-]+), plus (\w+);",
                         (", ".join(labels[:-1]), labels[-1], ATTACKS[std["attacks"][0]].label)),
        "quick attacks": (r"the `quick` preset runs (\w+) and (\w+)",
                          tuple(ATTACKS[a].label for a in quick["attacks"])),
        "quick pgd": (r"`quick` \(FGSM, PGD-(\d+);", (str(quick["pgd_steps"]),)),
        "square queries": (r"Square ([\d,]+) queries", (f"{std['square_queries']:,}",)),
        "thorough": (r"with (\d+) restarts, Square x (\d+), PGD-(\d+) x (\d+)\)",
                     tuple(str(thorough[k]) for k in
                           ("apgd_restarts", "square_restarts", "pgd_steps", "pgd_restarts"))),
        "cost model": (r"about (\d+) \(APGD-CE\) \+ (\d+) x (\d+) \(APGD-T\) \+ (\d+) x (\d+) \(FAB-T, "
                       r".*? ~([\d,]+) forward",
                       tuple(map(str, (std["apgd_steps"], std["n_targets"], std["apgd_steps"], std["n_targets"],
                                       std["fab_steps"], f"{std['square_queries']:,}")))),
        "art alpha": (r"`\[checks\.art_agreement\] alpha`, ([\d.]+)", (f"{art.alpha:g}",)),
        "art shortfall": (r"above the policy's (\d+) points", (_pct(policy.thresholds["art_agreement"].max),)),
        "art points": (r"\((\d+) by default: (\d+) discordant points",
                       (str(points_to_detect(art.detect_shortfall, art.alpha)), str(fewest_significant(art.alpha)))),
        "compare max_drop": (r"`\[compare\] max_drop` \(default ([\d.]+)\)", (f"{CompareRule().max_drop:g}",)),
        "corruptions": (r"under (\d+) image corruptions .*? at (\d+) severities",
                        (str(len(IMAGE)), str(len(SEVERITIES)))),
        "flip self-test": (r"A self-test flips (\d+)% of the labels", (_pct(LabelIssuesConfig().selftest_flip_rate),)),
        "clusters": (r"activation clustering \((\d+) and (\d+) clusters\)", tuple(map(str, backdoor.nb_clusters))),
        "cluster": (r"\((\d+)-(\d+)% of the class, silhouette >= ([\d.]+)\)",
                    (_pct(backdoor.min_cluster_share), _pct(backdoor.max_cluster_share),
                     f"{backdoor.min_silhouette:g}")),
        "poison": (r"all-to-all \((\d+)% of each class\)", (_pct(backdoor.selftest_rate),)),
        "leakage sigmas": (r"\(sigma 0-([\d.]+) of the input range\)", (f"{max(leakage.selftest_sigmas):g}",)),
        "warm-up": (r"eps warm-up over the first (\d+)% of the epochs", (f"{auto_warmup(100):g}",)),
        "threat grid": (r"the attack grid \(([\d.]+)-([\d.]+) x eps", (f"{SPREAD[0]:g}", f"{SPREAD[-1]:g}")),
        "generic grid": (r"the generic grid ([\d.]+)-([\d.]+) is used",
                         (f"{LEGACY_GRID[0]:g}", f"{LEGACY_GRID[-1]:g}")),
        "demo eps": (r"PGD at Linf eps ([\d.]+) and", (f"{demo_config().threat_model.eps:g}",)),
        "min points": (r"`min_test_points` \((\d+) keeps an accuracy's 95% interval within about \+-([\d.]+) points",
                       (str(minimum), f"{100 * 1.96 * sqrt(0.25 / n_test):.1f}")),
        "name rule": (r"`\.`, `_` and `-`, 1-(\d+) characters", tuple(re.findall(r"1-(\d+) characters", NAME_RULE))),
        "display": (r"may hold any text up to (\d+) characters", (str(DISPLAY_LIMIT),)),
        "sign-off": (r"`--reviewer` and `--role` take at most (\d+) characters", (str(SIGNOFF_LIMIT),)),
        "pr comment": (r"fits a PR comment \(< ([\d,]+) characters", (f"{LIMIT:,}",)),
        "timeouts": (r"within (\d+) s\b", (f"{TIMEOUT:g}",)),
        "results.json": (r"a plain file under (\d+) MiB, nested at most (\d+) deep",
                         (str(MAX_BYTES >> 20), str(MAX_DEPTH))),
        "trusted keys": (r"at most (\d+) MiB\)", (str(MAX_TRUSTED_BYTES >> 20),)),
        "image side": (r"larger than ([\d,]+) pixels a side", (f"{MAX_SIDE:,}",)),
        "memory": (r"\(default: (\d+)% of the available memory\)", (_pct(AVAILABLE_SHARE),)),
        "deployments": (r"\(default: (\d+) points of clean or robust accuracy\)",
                        (_pct(policy.thresholds["deployments"].max),)),
        "opt-in": (r"all but the opt-in `(\w+)` and `(\w+)`", tuple(c for c in CHECKS if not CHECKS[c].by_default)),
    }


CLAIMS = _claims()


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_every_number_the_readme_states_about_the_code_is_the_codes(name):
    pattern, expected = CLAIMS[name]
    found = re.findall(pattern, TEXT)
    assert found, f"the README no longer says {pattern!r}: update this test with the sentence"
    for groups in found:
        assert (groups if isinstance(groups, tuple) else (groups,)) == tuple(expected), (name, groups, expected)


def _bound(key: str) -> int:
    """The bound the loader enforces on ``key`` ("attacks.eps", "label_issues.epochs", "defences")."""
    import dataclasses

    from audit.config import AuditConfig
    from audit.config.bounds import LIMITS
    if key in LIMITS:
        return LIMITS[key]
    head, _, tail = key.partition(".")
    f = next(f for f in dataclasses.fields(AuditConfig) if f.name == head.removesuffix("[]"))
    if not tail:
        return f.metadata["bound"]
    section = type(getattr(AuditConfig(), head))
    return next(g for g in dataclasses.fields(section) if g.name == tail).metadata["bound"]


def test_the_bounds_table_is_the_loaders():
    import fnmatch

    from audit.config.bounds import DEFAULT_INT, DEFAULT_ITEMS, LIMITS
    rows = re.findall(r"^\| (`[^|]+) \| ([\d,]+)[^|]*\|$", README, flags=re.M)
    assert len(rows) >= 8, rows
    for keys, bound in rows:
        names = re.findall(r"`([^`]+)`", keys)
        prefix = names[0].split(".")[0]
        for name in names:
            name = name if "." in name or name in ("defences", "deployments") else f"{prefix}.{name}"
            matched = fnmatch.filter(LIMITS, name) if "*" in name else [name]
            assert matched and {_bound(m) for m in matched} == {int(bound.replace(",", ""))}, (name, bound)
    assert re.search(rf"\| any other count \| {DEFAULT_INT:,} \(lists: {DEFAULT_ITEMS:,} items\) \|", README)


# --- every TOML block loads, and the ones that state defaults state the code's ---

def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("block", toml_blocks(), ids=lambda b: b.split("\n")[0][:40])
def test_every_toml_block_loads_with_the_config_or_policy_loader(block, tmp_path):
    load_toml_block(block, tmp_path, touch_missing=True)


def test_the_blocks_that_state_defaults_state_the_codes(tmp_path):
    import dataclasses

    import tomllib

    from audit.config import AuditConfig
    from audit.config.execution import ExecutionConfig
    from audit.config.policy import EvidenceRule, from_data
    from audit.engine.configure import from_mapping
    blocks = toml_blocks()
    defaults = next(b for b in blocks if b.startswith('candidate = "baseline"'))
    assert "An empty file is the defaults" in TEXT
    assert dataclasses.replace(from_mapping(tomllib.loads(defaults), tmp_path), base_dir="") == AuditConfig()
    evidence = next(b for b in blocks if b.startswith("[evidence]"))
    assert from_data(EvidenceRule, tomllib.loads(evidence)["evidence"]) == EvidenceRule()
    execution = next(b for b in blocks if b.startswith("[execution]"))
    assert from_mapping(tomllib.loads(execution), tmp_path).execution == ExecutionConfig(executor="ray")


def test_the_schema_and_template_paths_are_the_codes():
    from audit.core.result_schema import SCHEMA_FILE
    assert f"`audit/core/{SCHEMA_FILE}`" in README and (ROOT / "audit/core" / SCHEMA_FILE).exists()
    assert "`audit/config/init_template.toml`" in README and "audit/schema/" not in README

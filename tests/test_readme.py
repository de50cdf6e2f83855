"""The README says only what is true: every repository path it names exists, every `advaudit` command line it
shows parses (each flag is the command's), its exit-code table is the CLI's, and the identifiers it quotes (the
attestation's predicate type, the schema path, the policy names) are the ones the code uses."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOP = ("audit/", "attacks/", "reports/", "templates/", "tests/", "examples/", "bench/", "tools/", ".ci/")


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

"""Every code block of the user guide (docs/) runs, so the guide cannot drift from the code.

A page's blocks run in order in a working directory of its own (``<!-- docs-test: after PAGE -->`` runs the page
in PAGE's directory, after it). The comment right before a block says what it is:

- ``<!-- file: NAME -->``: the block is written to NAME (a ```toml file is also loaded: a config with the engine's
  loader, a policy with the policy loader; a ```python file is only written: a later line runs or imports it);
- ``<!-- not run: REASON -->``: the block is shown, not run (REASON says why: a cluster, a long audit);
- otherwise ```toml is loaded as above, ```python is executed (one namespace per page), and each line of a
  ```bash or ```console block (``$ `` lines only in console) runs: ``advaudit ARGS`` through ``audit.cli.main``,
  ``python FILE`` as ``__main__``; the exit code must be 0, or the N of a trailing comment "exit N". Any other line
  fails the test (mark the block not run instead).
"""
from __future__ import annotations

import contextlib
import os
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

from tests.helpers import load_toml_block

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(?:<!-- (?P<mark>file|not run): (?P<arg>.+?) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
AFTER = re.compile(r"<!-- docs-test: after (\S+) -->")
RUNS = ("bash", "console", "sh")
PAGES = sorted(p.name for p in DOCS.glob("*.md"))


def blocks(page: str) -> list[re.Match]:
    return list(BLOCK.finditer((DOCS / page).read_text(encoding="utf-8")))


@contextlib.contextmanager
def inside(path: Path):
    old, old_path = Path.cwd(), list(sys.path)
    os.chdir(path)
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        os.chdir(old)
        sys.path[:] = old_path


def load_toml(text: str, cwd: Path) -> None:
    load_toml_block(text, cwd)


def command_lines(lang: str, body: str) -> list[str]:
    lines = body.replace("\\\n", " ").splitlines()
    if lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def run_line(line: str) -> None:
    from audit.cli import main
    expected = re.search(r"#.*\bexits? (\d+)", line)
    argv = shlex.split(line, comments=True)
    if argv[0] == "advaudit":
        code = main(argv[1:])
    elif argv[0] == "python" and len(argv) == 2:
        runpy.run_path(argv[1], run_name="__main__")
        code = 0
    else:
        pytest.fail(f"docs: cannot run {line!r}; mark its block <!-- not run: why -->")
    assert code == (int(expected.group(1)) if expected else 0), line


def run_page(page: str, cwd: Path) -> None:
    namespace: dict = {"__name__": "__docs__"}
    with inside(cwd):
        for b in blocks(page):
            lang, body, mark, arg = b["lang"], b["body"], b["mark"], b["arg"]
            if mark == "not run":
                continue
            if mark == "file":
                (cwd / arg).write_text(body, encoding="utf-8")
                if lang == "toml":
                    load_toml(body, cwd)
            elif lang == "toml":
                load_toml(body, cwd)
            elif lang == "python":
                exec(compile(body, f"docs/{page}", "exec"), namespace)  # noqa: S102 - the guide's own code
            elif lang in RUNS:
                for line in command_lines(lang, body):
                    run_line(line)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """page -> the directory it ran in (each page once, after the page it builds on)."""
    done: dict[str, Path] = {}

    def run(page: str) -> Path:
        if page not in done:
            after = AFTER.search((DOCS / page).read_text(encoding="utf-8"))
            cwd = run(after.group(1)) if after else tmp_path_factory.mktemp(page.removesuffix(".md"))
            run_page(page, cwd)
            done[page] = cwd
        return done[page]
    return run


def test_the_guide_has_its_pages_and_the_index_links_each():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    assert len(PAGES) >= 7
    for page in PAGES:
        assert page == "README.md" or f"]({page})" in index, page


def test_every_block_runs_or_says_why_not():
    for page in PAGES:
        for b in blocks(page):
            assert b["lang"] in ("toml", "python", "text", *RUNS), (page, b["lang"])
            if b["mark"] == "not run":
                assert len(b["arg"]) > 10, (page, b["arg"])
            elif b["lang"] in RUNS:
                assert command_lines(b["lang"], b["body"]), (page, b["body"])


@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_of_the_page_runs(page, ran):
    ran(page)


def test_a_wrong_block_fails(tmp_path):
    """The runner itself: an unknown key, a wrong exit code and an unrunnable line fail."""
    from audit.core.errors import UsageError
    with pytest.raises(UsageError, match="unknown key"):
        load_toml("[attacks]\nno_such_key = 1\n", tmp_path)
    with inside(tmp_path), pytest.raises(AssertionError):
        run_line("advaudit run --config missing.toml   # exit 0")
    with pytest.raises(pytest.fail.Exception):
        run_line("rm -rf /")

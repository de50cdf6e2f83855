"""The git state of the provenance block: HEAD's commit and whether the work tree is dirty, read without running
anything the repository controls.

A repository is hostile: its ``.git/config`` (with ``.gitattributes``) can name commands git runs (``core.fsmonitor``,
hooks, a ``filter.<driver>.clean`` / ``.process`` that ``git status`` runs on every tracked file it re-reads). So git
runs here with no ``GIT_*`` variable of this process (a hook's ``GIT_DIR`` / ``GIT_WORK_TREE`` / ``GIT_INDEX_FILE``
would name another repository), no system or global config, no optional locks, fsmonitor off and hooks pointed at
/dev/null; and ``git status`` does not run at all when the repository's config names any filter driver: the dirty
state is then unknown, with the reason. ``rev-parse`` and ``config`` read files only.

Untracked files count as dirty (``--untracked-files=normal``): a data or source file the audit read that is not
committed is not in the commit, so the commit alone does not reproduce the run; listing them reads directories and
``.gitignore`` only (no filter runs on an untracked file) and the timeout bounds a huge tree. Submodules are not
entered (``--ignore-submodules=all``: each is a repository with a config of its own).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from audit.core.provenance_parts import GitState

GIT_TIMEOUT = 5.0          # seconds per git command
HEX = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
SAFE = ("-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null")
STATUS = ("status", "--porcelain", "--ignore-submodules=all", "--untracked-files=normal")


def git_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: this process's without any ``GIT_*`` variable, plus the isolating ones."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if not k.upper().startswith("GIT_")}
    return {**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_OPTIONAL_LOCKS": "0",
            "GIT_TERMINAL_PROMPT": "0"}


def _git(directory: Path, *args: str) -> tuple[int, str]:
    """(git's exit status, its stdout) in ``directory``; (-1, "") when git is missing or takes too long."""
    try:
        done = subprocess.run(["git", *SAFE, "-C", str(directory), *args], capture_output=True, timeout=GIT_TIMEOUT,
                              env=git_env(), stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return -1, ""
    return done.returncode, done.stdout.decode("utf-8", errors="replace")


def filter_drivers(directory: Path) -> tuple[str, ...] | None:
    """The filter drivers the repository's config names (``filter.<driver>.*``), () for none, None when git cannot
    tell. Reading config runs nothing."""
    code, out = _git(directory, "config", "--get-regexp", r"^filter\.")
    if code == 1:   # no such key
        return ()
    if code != 0:
        return None
    names = {line.split(None, 1)[0].removeprefix("filter.").rpartition(".")[0] for line in out.splitlines() if line}
    return tuple(sorted(n for n in names if n)) or ("(unnamed)",)


def dirty_state(directory: Path) -> tuple[bool | None, str]:
    """(whether the work tree has changes, "" ) or (None, why that is unknown)."""
    drivers = filter_drivers(directory)
    if drivers is None:
        return None, "git could not read the repository's config"
    if drivers:
        shown = ", ".join(drivers)[:120]
        return None, f"the repository configures a filter driver ({shown}) that git status would run; not run"
    code, out = _git(directory, *STATUS)
    if code != 0:
        return None, "git status failed or timed out"
    return bool(out.strip()), ""


def git_state(directory: Path, of: str) -> GitState | None:
    """HEAD's commit and the dirty state of the repository holding ``directory``, or None (no repository, no git,
    no commit yet, a timeout)."""
    code, head = _git(directory, "rev-parse", "HEAD")
    commit = head.strip() if code == 0 else ""
    if not HEX.fullmatch(commit):
        return None
    dirty, reason = dirty_state(directory)
    return GitState(of=of, commit=commit, dirty=dirty, dirty_unknown=reason)

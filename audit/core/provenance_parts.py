"""The parts of a run's provenance block (``audit.core.result.Provenance``): the CI run, the git state, every file
the user supplied beside the bundle's copy, and the digests of in-memory arrays. Collected by
``audit.evidence.provenance``; every string here is the user's (or a CI's) text: each format escapes it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CIRun:
    """The CI job that ran the audit as reported by its standard environment variables (each value cut to 200
    characters; a local run can set them too). system: "github-actions", "gitlab-ci" or "jenkins"; run_id: GitHub's
    GITHUB_RUN_ID, GitLab's CI_PIPELINE_ID, Jenkins' BUILD_NUMBER (else BUILD_ID); attempt: GITHUB_RUN_ATTEMPT;
    repository: Jenkins' GIT_URL; url: the run's (GitHub: built from GITHUB_SERVER_URL, GITHUB_REPOSITORY and
    GITHUB_RUN_ID) or the job's page, shown as text, never as a link."""

    system: str
    run_id: str = ""
    repository: str = ""
    commit: str = ""
    workflow: str = ""
    url: str = ""
    attempt: str = ""


@dataclass(frozen=True)
class GitState:
    """The git repository holding ``of`` (the config file, else the model's source file): HEAD's commit and
    whether the work tree had uncommitted or untracked changes (``git status --porcelain`` not empty). ``dirty``
    None: unknown, ``dirty_unknown`` says why (git status failed or timed out, or was not run because the
    repository configures a filter driver, a command git status would run)."""

    of: str
    commit: str
    dirty: bool | None
    dirty_unknown: str = ""


@dataclass(frozen=True)
class SuppliedFile:
    """A file the user supplied, by role, with its SHA-256 beside the bundle file made from it, if any. A data
    folder: the SHA-256 of one ``sha256sum`` line per file its loader reads, in the order it reads them (links
    followed as it follows them), "<sha256>  <path relative to the folder>\\n", a name holding a backslash or a
    line break escaped as sha256sum does (the line starts with "\\", then "\\\\", "\\n", "\\r"); ``sha256`` ""
    with ``note`` "not hashed (too large: ...)" over the bound. ``state_sha256``: for weights, the SHA-256 of the
    state dict the file holds (sorted keys; each key, dtype, shape, bytes). ``note``: one sentence where the two
    hashes differ by design."""

    role: str
    path: str
    sha256: str
    bytes: int = 0
    bundled_as: str = ""
    bundled_sha256: str = ""
    state_sha256: str = ""
    note: str = ""


@dataclass(frozen=True)
class ArrayDigest:
    """One in-memory array as given to ``audit.run``: the SHA-256 of its C-order bytes, with dtype and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    sha256: str

"""The evidence manifest: SHA-256 of every file of an output directory, checkable by ``advaudit verify`` and by
``sha256sum -c SHA256SUMS`` (GNU coreutils format: "<hex>  <relative path>")."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.core.hashing import sha256_file
from audit.evidence.signing import ENVELOPE, inspect_envelope

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"
PARTIAL = ".advaudit-partial"   # in a directory being written: the writer's pid (never listed)
MAX_SUMS_BYTES = 16 * 2**20     # a bundle lists a handful of files; a SHA256SUMS over 16 MiB is not one
MAX_RESULTS_BYTES = 256 * 2**20  # results.json, read to check the signed predicate against it
MAX_NAME = 1024                 # a listed name longer than this, or with a control character, is a malformed line


ROLES = {"report.html": "report", "results.json": "results", "summary.md": "summary", "report.pdf": "report (PDF)",
         "triage.csv": "flagged data rows (triage table)",
         "config.json": "resolved configuration", "config.toml": "configuration file as given",
         "policy.toml": "policy (thresholds declared before the run)"}


def role(name: str) -> str:
    return "model weights" if name.startswith("models/") else ROLES.get(name, "file")


def write_manifest(directory: Path, environment: dict[str, str], facts: dict | None = None) -> dict[str, str]:
    """Hash every file in ``directory`` (except the manifest files) and write SHA256SUMS and manifest.json.

    ``facts``: what is hashed but not copied (the data splits, the user's model file). Returns name -> sha256
    of every listed file, SHA256SUMS included, for signing.
    """
    skip = (SUMS, MANIFEST, ENVELOPE, PARTIAL)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).as_posix() not in skip)
    entries: list[dict[str, Any]] = []
    for p in files:
        name = p.relative_to(directory).as_posix()
        entries.append({"path": name, "sha256": sha256_file(p), "bytes": p.stat().st_size, "role": role(name)})
    (directory / MANIFEST).write_text(json.dumps({"manifest_version": "1", "generator": "advaudit",
                                                  "algorithm": "sha256",
                                                  "environment": environment, **(facts or {}), "files": entries},
                                                 indent=1) + "\n", encoding="utf-8")
    lines = [f"{e['sha256']}  {e['path']}" for e in entries]
    lines.append(f"{sha256_file(directory / MANIFEST)}  {MANIFEST}")
    (directory / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    digests = {e["path"]: e["sha256"] for e in entries}
    digests[MANIFEST] = sha256_file(directory / MANIFEST)
    digests[SUMS] = sha256_file(directory / SUMS)
    return digests


def _plain_files(directory: Path) -> tuple[list[str], list[str]]:
    """(files, symbolic links) under ``directory`` as relative posix paths, never following a link."""
    files, links = [], []
    for root, dirs, names in os.walk(directory, followlinks=False):
        for n in dirs + names:
            p = Path(root) / n
            rel = p.relative_to(directory).as_posix()
            if p.is_symlink():
                links.append(rel)
            elif n in names:
                files.append(rel)
    return sorted(files), sorted(links)


def _inside(directory: Path, name: str) -> bool:
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts or "\\" in name:
        return False
    p = directory
    for part in parts:  # no component may be a link (a listed file reached through a linked folder)
        p = p / part
        if p.is_symlink():
            return False
    return True


@dataclass(frozen=True)
class Verification:
    """What ``verify_bundle`` found: the problems, whether the bundle is signed, the fingerprints of the keys that
    signed it, whether a pinned key verified the signature, and the listed files' SHA-256 (name -> hex)."""

    problems: list[str]
    signed: bool = False
    signers: list[str] = field(default_factory=list)
    pinned: bool = False
    digests: dict[str, str] = field(default_factory=dict)


def verify(directory: Path, public_key=None) -> list[str]:
    """Problems found (empty when SHA256SUMS lists manifest.json, every listed file is present and unchanged, every
    file present is listed, no symbolic link is present, and a signature, when there is one, verifies: with the
    pinned ``public_key`` (a path or trust.Pins) when given). UsageError when ``directory`` is not an evidence
    directory at all."""
    return verify_bundle(directory, public_key).problems


def _check_lines(directory: Path, text: str, problems: list[str]) -> tuple[set[str], dict[str, str]]:
    """Check every line of SHA256SUMS (problems appended); returns the listed names and the digests that held."""
    listed: set[str] = set()
    repeated: set[str] = set()
    digests: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if (not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)
                or len(name) > MAX_NAME or any(ord(c) < 32 or c == "\x7f" for c in name)):
            problems.append(f"{SUMS} line {n} is malformed")
            continue
        if name in listed:  # hashed once: a name listed a thousand times is not a thousand reads of the weights
            if name not in repeated:
                problems.append(f"{name}: listed more than once in {SUMS} (again on line {n})")
            repeated.add(name)
            continue
        path = directory / name
        try:
            if not _inside(directory, name):
                problems.append(f"{name}: path outside the bundle or through a link")
            elif not path.is_file():
                problems.append(f"{name}: missing")
            elif sha256_file(path) != digest:
                problems.append(f"{name}: changed (SHA-256 differs)")
            else:
                digests[name] = digest
        except OSError as e:
            problems.append(f"{name}: cannot be read ({e.strerror or e})")
        listed.add(name)
    return listed, digests


def verify_bundle(directory: Path, pinned=None) -> Verification:
    """``verify`` with what it learnt about the signature (see Verification)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    sums = directory / SUMS
    if not sums.is_file() or sums.is_symlink():
        raise UsageError(f"{directory} has no {SUMS}: not an advaudit evidence directory")
    if sums.stat().st_size > MAX_SUMS_BYTES:
        raise UsageError(f"{sums}: over the {MAX_SUMS_BYTES // 2**20} MiB limit of a {SUMS}: not an advaudit "
                         "evidence directory")
    present, links = _plain_files(directory)
    problems = [f"{rel}: a symbolic link (a bundle holds plain files only; what it points at is not checked)"
                for rel in links]
    raw = sums.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(f"{SUMS}: not UTF-8 text (byte {e.start}); its lines are read leniently")
        text = raw.decode("utf-8", errors="replace")
    listed, digests = _check_lines(directory, text, problems)
    if not listed:
        problems.append(f"{SUMS}: lists no file (an advaudit bundle lists at least {MANIFEST})")
    elif MANIFEST not in listed:
        problems.append(f"{MANIFEST}: not listed in {SUMS} (an advaudit bundle always lists it)")
    for name in present:
        if name not in listed and name not in (SUMS, ENVELOPE, MANIFEST):
            problems.append(f"{name}: not listed in {SUMS} (added after the run)")
    envelope = directory / ENVELOPE
    if not (envelope.is_file() and not envelope.is_symlink()):
        if pinned is not None:
            problems.append(f"{ENVELOPE}: missing, but a key was given: the bundle is not signed")
        if _records_signoff(directory):
            problems.append(f"{ENVELOPE}: missing, but {MANIFEST} records a sign-off: the signature was removed")
        return Verification(problems, digests=digests)
    actual = dict(digests)
    for rel in (listed - set(digests)) | {SUMS}:  # the listed files that did not match (already problems)
        try:
            if _inside(directory, rel) and (directory / rel).is_file():
                actual[rel] = sha256_file(directory / rel)
        except OSError:  # already a problem above
            pass
    check = inspect_envelope(envelope, actual, pinned)
    problems.extend(check.problems)
    if check.predicate is not None and not check.problems:
        problems.extend(_against_results(directory, check.predicate, digests))
    return Verification(problems, True, check.signers, check.pinned and not problems, digests)


def _read_json(path: Path, limit: int) -> object:
    from audit.core.files import read_bounded
    return json.loads(read_bounded(path, limit, path.name, follow=False))


def _records_signoff(directory: Path) -> bool:
    """Whether the bundle's manifest.json records a sign-off (a signed bundle's does)."""
    try:
        data = _read_json(directory / MANIFEST, MAX_SUMS_BYTES)
    except (UsageError, OSError, ValueError, RecursionError):
        return False  # a missing or broken manifest is its own problem (listed, changed)
    return isinstance(data, dict) and "signoff" in data


def _against_results(directory: Path, pred: dict, digests: dict[str, str]) -> list[str]:
    """Where the signed predicate disagrees with the bundle's results.json (verified by hash above)."""
    from audit.evidence.attestation import results_mismatches
    if "results.json" not in digests:
        return ["results.json: not in the bundle, so the signed verdict cannot be checked against it"]
    try:
        results = _read_json(directory / "results.json", MAX_RESULTS_BYTES)
    except (UsageError, OSError, ValueError, RecursionError) as e:
        return [f"results.json: cannot be read as JSON ({type(e).__name__}); the signed verdict is unchecked"]
    return results_mismatches(pred, results)

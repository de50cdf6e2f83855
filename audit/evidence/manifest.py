"""The evidence manifest: SHA-256 of every file of an output directory, checkable by ``advaudit verify`` and by
``sha256sum -c SHA256SUMS`` (GNU coreutils format: "<hex>  <relative path>")."""
from __future__ import annotations

import json
from pathlib import Path

from audit.core.errors import UsageError
from audit.core.hashing import sha256_file
from audit.evidence.signing import ENVELOPE, verify_envelope

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"


ROLES = {"report.html": "report", "results.json": "results", "summary.md": "summary", "report.pdf": "report (PDF)", "triage.csv": "flagged data rows (triage table)",
         "config.json": "resolved configuration", "config.toml": "configuration file as given",
         "policy.toml": "policy (thresholds declared before the run)"}


def role(name: str) -> str:
    return "model weights" if name.startswith("models/") else ROLES.get(name, "file")


def write_manifest(directory: Path, environment: dict[str, str], facts: dict | None = None) -> dict[str, str]:
    """Hash every file in ``directory`` (except the manifest files) and write SHA256SUMS and manifest.json.

    ``facts``: what is hashed but not copied (the data splits, the user's model file). Returns name -> sha256
    of every listed file, SHA256SUMS included, for signing.
    """
    skip = (SUMS, MANIFEST, ENVELOPE)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).as_posix() not in skip)
    entries = []
    for p in files:
        name = p.relative_to(directory).as_posix()
        entries.append({"path": name, "sha256": sha256_file(p), "bytes": p.stat().st_size, "role": role(name)})
    (directory / MANIFEST).write_text(json.dumps({"manifest_version": "1", "algorithm": "sha256",
                                                  "environment": environment, **(facts or {}), "files": entries},
                                                 indent=1) + "\n", encoding="utf-8")
    lines = [f"{e['sha256']}  {e['path']}" for e in entries]
    lines.append(f"{sha256_file(directory / MANIFEST)}  {MANIFEST}")
    (directory / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    digests = {e["path"]: e["sha256"] for e in entries}
    digests[MANIFEST] = sha256_file(directory / MANIFEST)
    digests[SUMS] = sha256_file(directory / SUMS)
    return digests


def verify(directory: Path, public_key: Path | None = None) -> list[str]:
    """Problems found (empty when every listed file is present and unchanged, every file present is listed, and
    a signature, when there is one and a key is given, verifies)."""
    directory = Path(directory)
    sums = directory / SUMS
    if not sums.is_file():
        raise UsageError(f"{directory} has no {SUMS}: not an advaudit evidence directory")
    problems, listed = [], set()
    for n, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{SUMS} line {n} is malformed")
            continue
        path = directory / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            problems.append(f"{name}: path outside the bundle")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: changed (SHA-256 differs)")
        listed.add(name)
    for p in sorted(directory.rglob("*")):
        name = p.relative_to(directory).as_posix()
        if p.is_file() and name not in listed and name not in (SUMS, ENVELOPE):
            problems.append(f"{name}: not listed in {SUMS} (added after the run)")
    envelope = directory / ENVELOPE
    if envelope.is_file():
        actual = {n: sha256_file(directory / n) for n in listed | {SUMS} if (directory / n).is_file()}
        problems.extend(verify_envelope(envelope, actual, public_key))
    elif public_key is not None:
        problems.append(f"{ENVELOPE}: missing, but a key was given: the bundle is not signed")
    return problems

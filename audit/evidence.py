"""The evidence manifest: SHA-256 of every file of an output directory, checkable by ``advaudit verify`` and by
``sha256sum -c SHA256SUMS`` (GNU coreutils format: "<hex>  <relative path>")."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from audit.errors import UsageError

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: Path, environment: dict[str, str]) -> None:
    """Hash every file in ``directory`` (except the manifest files) and write SHA256SUMS and manifest.json."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in (SUMS, MANIFEST))
    entries = [{"path": p.relative_to(directory).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}
               for p in files]
    (directory / MANIFEST).write_text(json.dumps({"manifest_version": "1", "algorithm": "sha256",
                                                  "environment": environment, "files": entries}, indent=1) + "\n",
                                      encoding="utf-8")
    lines = [f"{e['sha256']}  {e['path']}" for e in entries]
    lines.append(f"{sha256_file(directory / MANIFEST)}  {MANIFEST}")
    (directory / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")


def verify(directory: Path) -> list[str]:
    """Problems found (empty when every listed file is present and unchanged)."""
    directory = Path(directory)
    sums = directory / SUMS
    if not sums.is_file():
        raise UsageError(f"{directory} has no {SUMS}: not an advaudit evidence directory")
    problems = []
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
    return problems

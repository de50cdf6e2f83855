"""Write every format of one result into an output directory atomically.

Files are written to a temporary sibling directory and moved into place only when all of them rendered, so an
interrupted or failed run never leaves a half-written directory and never destroys a previous good one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from audit.core.errors import UsageError
from audit.core.result import AuditResult
from audit.core.serde import to_data
from audit.evidence.manifest import write_manifest
from audit.evidence.signing import ENVELOPE, sign


def check_writable(out: Path) -> None:
    """Fail fast, before any training, when the output directory cannot be created or written."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as e:
        raise UsageError(f"cannot write the output directory {out}: {e.strerror or e}") from None


def predicate(result: AuditResult) -> dict:
    """What the signature attests besides the file hashes."""
    return {"tool": result.tool, "created": result.created, "verdict": result.verdict.value,
            "candidate": result.candidate, "policy": {"name": result.policy.name, "sha256": result.policy.sha256},
            "data_sha256": to_data(result.dataset.sha256), "schema_version": result.schema_version}


def write_outputs(result: AuditResult, out: Path, rendered: dict[str, str | bytes],
                  files: dict[str, bytes] | None = None, facts: dict | None = None,
                  sign_key: Path | None = None) -> dict[str, Path]:
    """Write the ``rendered`` reports (file name -> text or bytes) and the bundle ``files`` (relative path ->
    bytes), hash everything into the manifest, optionally sign it, then move the directory into place in one
    rename. Returns file name -> final path of every rendered report."""
    out = Path(out).resolve()
    check_writable(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise UsageError(f"cannot create the output directory {out}: {e.strerror or e}") from None
    try:
        written = {}
        for name, data in rendered.items():
            target = tmp / name
            target.write_bytes(data) if isinstance(data, bytes) else target.write_text(data, encoding="utf-8")
            written[name] = out / name
        for rel, data in (files or {}).items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        digests = write_manifest(tmp, result.environment, facts)
        if sign_key is not None:
            envelope = sign(digests, predicate(result), sign_key)
            (tmp / ENVELOPE).write_text(json.dumps(envelope, indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
        return written
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

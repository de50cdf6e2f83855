"""Write every format of one result into an output directory atomically.

Files are written to a hidden sibling directory and swapped into place only when all of them rendered
(audit/evidence/outdir.py), so an interrupted or failed run never leaves a half-written directory, never destroys
a previous good one, and never replaces a directory advaudit did not write.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from audit.core.errors import UsageError
from audit.core.result import AuditResult
from audit.core.serde import to_data
from audit.evidence.manifest import write_manifest
from audit.evidence.outdir import check_output_dir, clean_leftovers, inside, new_partial, publish, write_inside
from audit.evidence.signing import ENVELOPE, sign


def check_writable(out: Path) -> Path:
    """Fail fast, before any training, when ``--out`` may not be replaced or cannot be written."""
    return check_output_dir(out)


def predicate(result: AuditResult) -> dict:
    """What the signature attests besides the file hashes: an INCOMPLETE verdict is attested as such, with the
    evidence it lacks, and the policy's purpose says whether the verdict was meant as a sign-off or a screening."""
    return {"tool": result.tool, "created": result.created, "verdict": result.verdict.value,
            "candidate": result.candidate, "policy": {"name": result.policy.name, "sha256": result.policy.sha256,
                                                      "purpose": result.policy.purpose},
            "evidence_gaps": list(result.evidence_gaps),
            "data_sha256": to_data(result.dataset.sha256), "schema_version": result.schema_version}


def write_outputs(result: AuditResult, out: Path, rendered: dict[str, str | bytes],
                  files: dict[str, bytes] | None = None, facts: dict | None = None,
                  sign_key: Path | None = None) -> dict[str, Path]:
    """Write the ``rendered`` reports (file name -> text or bytes) and the bundle ``files`` (relative path ->
    bytes), hash everything into the manifest, optionally sign it, then swap the directory into place.
    Returns file name -> final path of every rendered report."""
    out = check_output_dir(out)
    clean_leftovers(out)
    try:
        tmp = new_partial(out)
    except OSError as e:
        raise UsageError(f"cannot create the output directory {out}: {e.strerror or e}") from None
    try:
        written = {}
        for name, data in rendered.items():
            write_inside(tmp, name, data)
            written[name] = inside(out, name)
        for rel, data in (files or {}).items():
            write_inside(tmp, rel, data)
        digests = write_manifest(tmp, result.environment, facts)
        if sign_key is not None:
            envelope = sign(digests, predicate(result), sign_key)
            write_inside(tmp, ENVELOPE, json.dumps(envelope, indent=1) + "\n")
        publish(tmp, out)
        return written
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

"""Write every format of one result into an output directory atomically.

Files are written to a hidden sibling directory and swapped into place only when all of them rendered
(audit/evidence/outdir.py), so an interrupted or failed run never leaves a half-written directory, never destroys
a previous good one, and never replaces a directory advaudit did not write.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from audit.core.result import AuditResult
from audit.evidence.attestation import predicate, signoff, validate
from audit.evidence.manifest import write_manifest
from audit.evidence.outdir import begin_write, check_output_dir, inside, publish, write_inside
from audit.evidence.signing import ENVELOPE, keyid, load_private, raw_public, sign

__all__ = ["check_writable", "predicate", "write_outputs", "signed_files"]


def check_writable(out: Path) -> Path:
    """Fail fast, before any training, when ``--out`` may not be replaced or cannot be written."""
    return check_output_dir(out)


def signed_files(directory: Path, result: AuditResult, key_path: Path, environment: dict[str, str],
                 facts: dict | None = None, reviewer: tuple[str, str] = ("", "")) -> dict[str, str]:
    """Sign the files in ``directory`` (being written, not yet published): the sign-off (reviewer, role, the UTC
    time, the key fingerprint) goes into manifest.json and the predicate, then SHA256SUMS and the envelope are
    written. Returns the sign-off."""
    key = load_private(key_path)
    public = key.public_key()
    record = signoff(raw_public(public), keyid(public), *reviewer)
    digests = write_manifest(directory, environment, {**(facts or {}), "signoff": record})
    pred = predicate(result, record)
    validate(pred)
    write_inside(directory, ENVELOPE, json.dumps(sign(digests, pred, key), indent=1) + "\n")
    return record


def write_outputs(result: AuditResult, out: Path, rendered: dict[str, str | bytes],
                  files: dict[str, bytes] | None = None, facts: dict | None = None,
                  sign_key: Path | None = None) -> dict[str, Path]:
    """Write the ``rendered`` reports (file name -> text or bytes) and the bundle ``files`` (relative path ->
    bytes), hash everything into the manifest, optionally sign it (``sign_key``: the sign-off names the result's
    reviewer), then swap the directory into place.
    Returns file name -> final path of every rendered report."""
    out, tmp = begin_write(out, "cannot create the output directory")
    try:
        written = {}
        for name, data in rendered.items():
            write_inside(tmp, name, data)
            written[name] = inside(out, name)
        for rel, data in (files or {}).items():
            write_inside(tmp, rel, data)
        if sign_key is None:
            write_manifest(tmp, result.environment, facts)
        else:  # signed at write time: the sign-off names the config's [reviewer]
            reviewer = (result.reviewer.get("name", ""), result.reviewer.get("role", ""))
            signed_files(tmp, result, sign_key, result.environment, facts, reviewer)
        publish(tmp, out)
        return written
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

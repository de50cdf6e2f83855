"""Write every format of one result into an output directory atomically.

Files are written to a temporary sibling directory and moved into place only when all of them rendered, so an
interrupted or failed run never leaves a half-written directory and never destroys a previous good one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from audit.errors import UsageError
from audit.evidence import write_manifest
from audit.result import AuditResult
from reports import FORMATS


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


def write_outputs(result: AuditResult, out: Path, formats: tuple[str, ...] = tuple(FORMATS)) -> dict[str, Path]:
    out = Path(out).resolve()
    check_writable(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise UsageError(f"cannot create the output directory {out}: {e.strerror or e}") from None
    try:
        written = {}
        for fmt in formats:
            name, render = FORMATS[fmt]
            (tmp / name).write_text(render(result), encoding="utf-8")
            written[fmt] = out / name
        write_manifest(tmp, result.environment)
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

"""Helpers shared by the tests: a genuine previous advaudit output directory, and byte snapshots of a tree."""
from __future__ import annotations

from pathlib import Path

from audit.evidence.manifest import write_manifest


def previous_output(out: Path) -> dict[str, bytes]:
    """An earlier advaudit output at ``out`` (a report listed in its manifest); returns its byte snapshot."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text("previous good report")
    write_manifest(out, {"advaudit": "test"})
    return snapshot(out)


def snapshot(d: Path) -> dict[str, bytes]:
    """relative path -> bytes of every file under ``d`` (empty when ``d`` does not exist)."""
    d = Path(d)
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()} \
        if d.exists() else {}

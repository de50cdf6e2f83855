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


POLICY_TABLES = {"evidence", "thresholds", "validity", "compare"}


def load_toml_block(text: str, folder: Path, touch_missing: bool = False) -> None:
    """Load a documented TOML block the way advaudit would: a policy (it has a policy table; a fragment gets a
    name) or a config read from ``folder``. ``touch_missing``: files it names (my_data.npz) exist only as names
    in the docs, so each one reported missing is created empty and the load retried (at most 8)."""
    import re

    import tomllib

    from audit.config.policy import load_policy
    from audit.core.errors import UsageError
    from audit.engine.configure import from_mapping
    data = tomllib.loads(text)
    if POLICY_TABLES & set(data):
        path = folder / ".policy-block.toml"
        path.write_text(text if "name" in data else f'name = "a fragment"\n{text}', encoding="utf-8")
        load_policy(str(path))
        return
    for _ in range(8 if touch_missing else 1):
        try:
            from_mapping(data, folder)
            return
        except UsageError as e:
            missing = re.search(r"file not found: (\S+)$", str(e))
            if not (touch_missing and missing):
                raise
            Path(missing.group(1)).touch()

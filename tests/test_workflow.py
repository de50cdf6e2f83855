"""The PR workflow example is a valid GitHub workflow (the workflow JSON Schema bundled with check-jsonschema,
offline) and has what makes it work on GitHub: advaudit installed from its repository, the base audit cached,
superseded runs cancelled, one comment updated in place, forks still gated."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parent.parent / "examples" / "ci" / "advaudit-pr.yml"


def test_the_workflow_validates_against_the_github_workflow_schema():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(exe).exists():
        pytest.skip("check-jsonschema is a test dependency: pip install -e '.[test]'")
    proc = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = WORKFLOW.read_text(encoding="utf-8").replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest")
    bad = Path(WORKFLOW.parent.parent.parent / ".pytest-broken-workflow.yml")
    try:
        bad.write_text(broken, encoding="utf-8")
        assert subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(bad)],
                              capture_output=True, timeout=120).returncode != 0, "the validator must be able to fail"
    finally:
        bad.unlink(missing_ok=True)


def test_the_workflow_installs_from_the_repository_caches_cancels_and_comments_once():
    import yaml
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert wf["concurrency"]["cancel-in-progress"] is True
    steps = wf["jobs"]["audit"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "pip install ./advaudit-src" in runs and "pip install advaudit\n" not in runs + "\n"
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache"))
    assert "base.sha" in cache["with"]["key"] and "hashFiles" in cache["with"]["key"]
    base = next(s for s in steps if s.get("name") == "Audit the base")
    assert "cache-hit" in base["if"]
    comment = next(s for s in steps if "comment" in s.get("name", "").lower())
    assert comment["continue-on-error"] is True and "head.repo.full_name == github.repository" in comment["if"]
    assert "PATCH" in comment["run"] and "MARKER" in comment["run"]
    assert steps[-1]["name"] == "Gate" and "if" not in steps[-1]

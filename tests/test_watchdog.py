"""The suite's watchdog (tests/watchdog.py): a test past the limit ends the session with exit 70, naming the test,
showing the failure before it and the hung frame; tests within the limit are untouched."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(tmp_path: Path, body: str, limit: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_subject.py").write_text(body, encoding="utf-8")
    env = {**os.environ, "ADVAUDIT_TEST_LIMIT_S": limit, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.watchdog",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_subject.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


HANGS = '''
import time

def test_fails_first():
    assert 1 == 2, "the failure before the hang"

def test_hangs_in_a_wait():
    time.sleep(600)

def test_never_reached():
    pass
'''


def test_a_hung_test_ends_the_session_naming_it_the_failure_before_and_the_frame(tmp_path):
    p = run_pytest(tmp_path, HANGS, "2")
    assert p.returncode == 70, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "test_subject.py::test_hangs_in_a_wait ran past 2 s" in p.stderr
    assert "failed before it: test_subject.py::test_fails_first" in p.stderr
    assert "the failure before the hang" in p.stderr
    assert 'test_subject.py", line 8 in test_hangs_in_a_wait' in p.stderr
    assert "/_pytest/" not in p.stderr.split("the threads' stacks:")[1]


def test_tests_within_the_limit_run_as_usual(tmp_path):
    p = run_pytest(tmp_path, "import time\n\ndef test_a():\n    time.sleep(0.2)\n\ndef test_b():\n    pass\n", "30")
    assert p.returncode == 0, p.stdout[-2000:]
    assert "2 passed" in p.stdout

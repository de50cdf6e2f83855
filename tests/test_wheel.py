"""The built wheel ships its templates and data: install it into a fresh virtual environment (outside the source
tree) and render a report from there."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def test_installed_wheel_renders_a_report(demo_run, tmp_path):
    _code, out, _data = demo_run
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(dist), "-q")
    wheel = next(dist.glob("advaudit-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    py = venv / "bin" / "python"
    site = Path(run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # install the wheel alone by unpacking it (pip-free venv); dependencies come from this environment, appended
    # after the venv's own site-packages so the wheel's copy of advaudit wins over any editable install.
    run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel))
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = run(str(py), "-c", "import audit, templates; print(audit.__file__); print(templates.__file__)",
                cwd=tmp_path, env=env).stdout.split()
    assert all(Path(w).is_relative_to(site) for w in where), where
    target = tmp_path / "rendered"
    proc = subprocess.run([str(py), "-m", "audit", "render", str(out / "results.json"), "--out", str(target)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    html = (target / "report.html").read_text()
    assert "NIST AI RMF" in html and "<svg" in html
    assert (target / "summary.md").exists() and (target / "results.json").exists()

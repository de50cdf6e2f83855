"""The evidence manifest: any changed byte of any listed file is detected, by us and by sha256sum -c."""
import shutil
import subprocess

import pytest

from audit.cli import main
from audit.evidence import MANIFEST, SUMS

pytestmark = pytest.mark.slow


def listed(out):
    return [line.split("  ", 1)[1] for line in (out / SUMS).read_text().splitlines()]


def test_demo_output_verifies_with_advaudit_and_sha256sum(demo_run, capsys):
    _code, out, _ = demo_run
    assert set(listed(out)) == {"report.html", "results.json", "summary.md", MANIFEST}
    assert main(["verify", str(out)]) == 0
    assert "bundle verified" in capsys.readouterr().out
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "-c", "--quiet", SUMS], cwd=out, check=True)


@pytest.mark.parametrize("name", ["report.html", "results.json", "summary.md", MANIFEST])
def test_flipping_one_byte_of_any_listed_file_is_detected_by_name(demo_run, tmp_path, capsys, name):
    _code, out, _ = demo_run
    copy = tmp_path / "bundle"
    shutil.copytree(out, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    assert main(["verify", str(copy)]) == 1
    assert f"FAILED {name}: changed" in capsys.readouterr().out
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", "--quiet", SUMS], cwd=copy, capture_output=True).returncode != 0


def test_missing_file_and_non_bundle(demo_run, tmp_path, capsys):
    _code, out, _ = demo_run
    copy = tmp_path / "bundle"
    shutil.copytree(out, copy)
    (copy / "summary.md").unlink()
    assert main(["verify", str(copy)]) == 1
    assert "summary.md: missing" in capsys.readouterr().out
    assert main(["verify", str(tmp_path)]) == 2

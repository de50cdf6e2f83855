"""advaudit verify on crafted folders: an empty or entry-less SHA256SUMS, one that does not list manifest.json, an
oversized one, and hostile names never verify and never crash (exit 1 with the problem named, or exit 2)."""
from __future__ import annotations

import shutil

import pytest

from audit.cli import main
from audit.core.hashing import sha256_file
from audit.evidence.manifest import MANIFEST, MAX_SUMS_BYTES, SUMS, verify, write_manifest


def run(capsys, folder) -> tuple[int, str, str]:
    code = main(["verify", str(folder)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bundle(tmp_path):
    """A small bundle written by advaudit's own manifest writer."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "results.json").write_text("{}\n", encoding="utf-8")
    (folder / "report.html").write_text("<html></html>\n", encoding="utf-8")
    write_manifest(folder, {})
    return folder


def test_a_small_bundle_verifies(bundle, capsys):
    assert verify(bundle) == []
    assert run(capsys, bundle)[0] == 0


@pytest.mark.parametrize("content", ["", "\n", "\n\n  \n", "not a line\n", "0" * 64 + " one-space-only\n"])
def test_a_sums_file_listing_no_file_does_not_verify(tmp_path, capsys, content):
    (tmp_path / SUMS).write_text(content, encoding="utf-8")
    code, out, err = run(capsys, tmp_path)
    assert code == 1 and f"FAILED {SUMS}: lists no file" in out and "bundle verified" not in out and not err


def test_a_sums_file_not_listing_the_manifest_does_not_verify(bundle, capsys):
    lines = [line for line in (bundle / SUMS).read_text().splitlines() if not line.endswith(f"  {MANIFEST}")]
    (bundle / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, bundle)
    assert code == 1 and f"FAILED {MANIFEST}: not listed in {SUMS}" in out
    assert out.count(MANIFEST) == 1   # named once, not also as "added after the run"
    (bundle / MANIFEST).unlink()
    code, out, _ = run(capsys, bundle)
    assert code == 1 and f"FAILED {MANIFEST}: not listed in {SUMS}" in out


def test_only_a_listed_file_without_the_manifest_does_not_verify(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}", encoding="utf-8")
    (tmp_path / SUMS).write_text(f"{sha256_file(tmp_path / 'results.json')}  results.json\n", encoding="utf-8")
    code, out, _ = run(capsys, tmp_path)
    assert code == 1 and f"{MANIFEST}: not listed" in out


@pytest.mark.parametrize("name", ["", ".", "..", "/etc/passwd", "a\0b", "models", "../bundle/results.json",
                                  "x" * 5000, "x" * 300, "x/" * 400, "results.json\r", "\x1b[31mred"])
def test_hostile_names_are_problems_not_crashes(bundle, capsys, name):
    (bundle / "models").mkdir(exist_ok=True)
    with open(bundle / SUMS, "a", encoding="utf-8", newline="") as fh:
        fh.write(f"{'0' * 64}  {name}\n")
    code, out, err = run(capsys, bundle)
    assert code == 1 and "FAILED" in out and not err and "\x1b" not in out and len(out) < 2000


def test_an_oversized_sums_file_is_a_usage_error(tmp_path, capsys):
    with open(tmp_path / SUMS, "wb") as fh:   # sparse: no disk is used, and it is never read
        fh.truncate(MAX_SUMS_BYTES + 1)
    code, _, err = run(capsys, tmp_path)
    assert code == 2 and "MiB limit" in err and err.count("\n") == 1


def test_a_sums_directory_or_link_is_not_a_bundle(tmp_path, capsys, bundle):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / SUMS).mkdir()
    assert run(capsys, tmp_path / "d")[0] == 2
    copy = tmp_path / "linked"
    shutil.copytree(bundle, copy)
    (copy / SUMS).unlink()
    (copy / SUMS).symlink_to(bundle / SUMS)
    assert run(capsys, copy)[0] == 2

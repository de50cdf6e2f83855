"""The provenance block against hostile inputs, each collector on its own (no audit run): a repository whose config
names a command git status would run, GIT_* variables from a hook, an undecodable USER and file name, bidi
controls in report.html, linked and newline-named data files, a factory re-exported from a package, an inline
nn.Sequential (installed code), and the CI variables' labels."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from torch import nn

from audit.core.provenance_parts import CIRun, GitState, SuppliedFile
from audit.evidence import provenance as prov
from audit.evidence.git_state import git_env

HAS_GIT = shutil.which("git") is not None


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q")
    (path / "a.toml").write_text("seed = 0\n", encoding="utf-8")
    _git(path, "add", "a.toml")
    _git(path, "commit", "-q", "-m", "c")
    return path


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_a_filter_driver_in_the_repository_config_never_runs_and_the_dirty_state_is_unknown(tmp_path):
    repo = _repo(tmp_path / "repo")
    marker = tmp_path / "PWNED"
    (repo / ".gitattributes").write_text("*.toml filter=evil\n", encoding="utf-8")
    _git(repo, "config", "filter.evil.clean", f"sh -c 'echo x >> {marker}; cat'")
    os.utime(repo / "a.toml", (1, 1))   # racy: git status would re-read it through the filter
    state = prov.git_state(repo, "config file")
    assert not marker.exists()
    assert state is not None and state.commit == _git(repo, "rev-parse", "HEAD")
    assert state.dirty is None and "filter driver (evil)" in state.dirty_unknown


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_git_variables_from_a_hook_never_point_git_at_another_repository(tmp_path, monkeypatch):
    ours, other = _repo(tmp_path / "ours"), _repo(tmp_path / "other")
    (other / "b").write_text("x", encoding="utf-8")
    _git(other, "add", "b")
    _git(other, "commit", "-q", "-m", "d")
    head = _git(ours, "rev-parse", "HEAD")
    assert head != _git(other, "rev-parse", "HEAD")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    state = prov.git_state(ours, "config file")
    assert state is not None and state.commit == head and state.dirty is False
    env = git_env()
    assert not any(k in env for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_a_failed_git_status_is_unknown_never_clean_in_html_and_markdown(tmp_path):
    repo = _repo(tmp_path / "repo")
    (repo / ".git" / "index").write_bytes(b"DIRC\0")   # truncated: status fails, rev-parse still reads HEAD
    state = prov.git_state(repo, "config file")
    assert state is not None and state.dirty is None and state.dirty_unknown == "git status failed or timed out"
    html, md = _rendered(prov.Provenance(user="u", host="h", started="t", tool_version="0", git=state))
    assert "dirty state unknown (git status failed or timed out)" in html and "(clean)" not in html
    assert "dirty state unknown: git status failed or timed out" in md


def _result(p):
    from tests.audit.evidence.test_provenance import _result as result
    return result(p)


def _rendered(p) -> tuple[str, str]:
    from reports.html import render_html
    from reports.markdown import render_markdown
    return render_html(_result(p)), render_markdown(_result(p))


def test_an_undecodable_user_and_file_name_are_recorded_escaped_and_every_format_writes(tmp_path, monkeypatch):
    from reports.json_format import render_json
    monkeypatch.setattr(prov.getpass, "getuser", lambda: os.fsdecode(b"ev\xffil"))
    name = os.fsdecode(b"c\xfeonfig.toml")
    try:
        (tmp_path / name).write_bytes(b"seed = 0\n")
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses a non-UTF-8 name")
    user, _host = prov.operator()
    assert user == "ev\\xffil"
    f = prov.supplied("config", tmp_path / name)
    p = prov.clean(prov.Provenance(user=user, host="h", started="t", tool_version="0", files=(f,),
                                   ci=CIRun("jenkins", workflow=os.fsdecode(b"job\xff"))))
    assert p.files[0].path.endswith("c\\xfeonfig.toml") and p.ci.workflow == "job\\xff"
    html, md = _rendered(p)
    js = render_json(_result(p))
    for out in (html, md, js):
        out.encode("utf-8")   # the write that failed with exit 3
    assert "ev\\xffil" in html and "ev\\\\xffil" in md and "c\\\\xfeonfig\\.toml" in md
    assert json.loads(js)["provenance"]["user"] == "ev\\xffil"


def test_bidi_and_control_characters_never_reach_report_html():
    rlo = "\u202e"
    p = prov.Provenance(user=f"eve{rlo}lmth.exe", host="h\u2066x\u2069", started="t\x1b[2J", tool_version="0",
                        ci=CIRun("github-actions", "1", workflow=f"audit{rlo}"),
                        files=(SuppliedFile("config", f"/x/{rlo}a.toml", "3" * 64),))
    result = _result(p)
    from dataclasses import replace

    from reports.html import render_html
    html = render_html(replace(result, candidate=f"base{rlo}line"))
    for c in (rlo, "\u2066", "\u2069", "\x1b"):
        assert c not in html
    assert "eve\ufffdlmth.exe" in html and "base\ufffdline" in html


@pytest.fixture
def no_ci_env(monkeypatch):
    for k in prov.CI_VARS:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _data_hash(path: Path) -> SuppliedFile:
    cfg = types.SimpleNamespace(data=types.SimpleNamespace(source="folder", path=str(path), test_path="",
                                                           factory="", ood_path=""), base_dir="")
    (f,) = prov.data_files(cfg)
    assert f is not None
    return f


def test_a_folder_of_linked_class_folders_and_images_hashes_the_images_the_loader_reads(tmp_path):
    images = {"cat/a.png": b"A", "cat/b.png": b"BB", "dog/c.png": b"CCC"}
    real = _folder(tmp_path / "real", images)
    store = _folder(tmp_path / "store", images)
    linked = tmp_path / "linked"
    (linked / "dog").mkdir(parents=True)
    (linked / "cat").symlink_to(store / "cat", target_is_directory=True)   # a linked class folder
    (linked / "dog" / "c.png").symlink_to(store / "dog" / "c.png")         # a linked image
    (real / "notes.txt").write_bytes(b"not read by the loader")
    want = hashlib.sha256(b"".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n".encode()
                                   for n, b in images.items())).hexdigest()
    assert _data_hash(real).sha256 == _data_hash(linked).sha256 == want != hashlib.sha256(b"").hexdigest()
    assert _data_hash(linked).bytes == 6


def test_a_newline_in_a_file_name_cannot_fake_a_second_line(tmp_path):
    s2 = hashlib.sha256(b"C2").hexdigest()
    two = _data_hash(_folder(tmp_path / "two", {"k/a.png": b"C1", "k/b.png": b"C2"}))
    one = _data_hash(_folder(tmp_path / "one", {f"k/a.png\n{s2}  k/b.png": b"C1"}))
    assert one.sha256 != two.sha256
    line = f"\\{hashlib.sha256(b'C1').hexdigest()}  k/a.png\\n{s2}  k/b.png\n".encode()
    assert one.sha256 == hashlib.sha256(line).hexdigest()   # escaped as sha256sum escapes it


def test_a_folder_over_the_bound_is_recorded_not_hashed_with_a_warning(tmp_path, monkeypatch, caplog):
    import audit.evidence.data_digest as dd
    monkeypatch.setattr(dd, "MAX_FILES", 1)
    f = _data_hash(_folder(tmp_path / "d", {"k/a.png": b"1", "k/b.png": b"22"}))
    assert f.sha256 == "" and f.note.startswith("not hashed (too large: 2 files / 3 bytes")
    assert "not hashed" in caplog.text
    html, md = _rendered(prov.Provenance(user="u", host="h", started="t", tool_version="0", files=(f,)))
    assert "not hashed (too large: 2 files / 3 bytes" in html and "not hashed \\(too large: 2 files / 3 bytes" in md


def test_a_re_exported_factory_records_the_file_defining_it(tmp_path, monkeypatch):
    pkg = tmp_path / "provpkg_reexport"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .net import build\n", encoding="utf-8")
    (pkg / "net.py").write_text("import torch\n\ndef build():\n    return torch.nn.Linear(2, 2)\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("provpkg_reexport")
    try:
        cfg = types.SimpleNamespace(model=types.SimpleNamespace(archive="", factory="provpkg_reexport:build"))
        assert prov.model_source(cfg, None) == pkg / "net.py"
    finally:
        for m in ("provpkg_reexport", "provpkg_reexport.net"):
            sys.modules.pop(m, None)


def test_an_inline_sequential_is_third_party_never_bundled_nor_its_git_state(tmp_path, monkeypatch):
    monkeypatch.setattr(prov, "git_state", lambda *a: pytest.fail("git state taken from installed code"))
    source = prov.model_source(types.SimpleNamespace(model=types.SimpleNamespace(archive="")), nn.Sequential)
    assert source is not None and source.name == "container.py" and prov.third_party(source)
    cfg = types.SimpleNamespace(model=types.SimpleNamespace(archive="", weights="", factory=""),
                                data=types.SimpleNamespace(source="builtin", path="", test_path="", factory="",
                                                           ood_path=""), base_dir="")
    policy = types.SimpleNamespace(source="default", sha256="0" * 64, text="x")
    p = prov.collect(cfg, policy, types.SimpleNamespace(trainable=False), nn.Sequential(nn.Linear(2, 2)))
    (src,) = [f for f in p.files if f.role.startswith("model class source")]
    assert src.role == "model class source (third-party, not bundled)" and p.git is None
    assert prov.source_for_bundle(p) is None
    assert prov.with_bundle(p, {"source/container.py": b"x"}).files[-1].bundled_as == ""


def test_ci_variables_are_labelled_as_reported_with_jenkins_build_and_github_attempt(no_ci_env):
    jk = prov.ci_context({"JOB_NAME": "j", "BUILD_NUMBER": "12", "BUILD_ID": "12", "GIT_URL": "https://g/r.git",
                          "BUILD_URL": "https://ci/job/j/12/"})
    assert jk == CIRun("jenkins", "12", "https://g/r.git", "", "j", "https://ci/job/j/12/")
    gh = prov.ci_context({"GITHUB_RUN_ID": "5", "GITHUB_RUN_ATTEMPT": "2"})
    assert gh is not None and gh.attempt == "2"
    html, md = _rendered(prov.Provenance(user="u", host="h", started="t", tool_version="0", ci=gh,
                                         git=GitState("config file", "a" * 40, False)))
    assert "as reported by the environment variables: github-actions run 5 (attempt 2)" in html
    assert "CI (as reported by the environment variables) github\\-actions run 5 attempt 2" in md


def test_the_config_path_is_recorded_absolute_and_the_summary_names_only_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("c.toml").write_bytes(b"seed = 0\n")
    cfg = types.SimpleNamespace(model=types.SimpleNamespace(archive="", weights=""), base_dir=str(tmp_path),
                                data=types.SimpleNamespace(source="builtin", ood_path=""))
    policy = types.SimpleNamespace(source="default", sha256="0" * 64, text="x")
    (config, _policy) = prov.supplied_files(cfg, policy, Path("c.toml"), None, False)
    assert config.path == str(tmp_path.resolve() / "c.toml")
    f = SuppliedFile("config", "/home/alice/secret-project/advaudit.toml", "3" * 64)
    html, md = _rendered(prov.Provenance(user="u", host="h", started="t", tool_version="0", files=(f,)))
    assert "/home/alice/secret-project/advaudit.toml" in html
    assert "alice" not in md and "| config: advaudit\\.toml |" in md

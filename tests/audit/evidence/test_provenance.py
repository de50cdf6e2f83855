"""The provenance block's collectors, each on its own (no audit run): CI variables (hostile values, bounded and
escaped in HTML and Markdown), the git state of a real temporary repository, and the hashes a reader recomputes
with hashlib."""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess

import numpy as np
import pytest
import torch

from audit.core.provenance_parts import CIRun, SuppliedFile
from audit.evidence import provenance as prov

HOSTILE = "<script>alert(1)</script>\n# Heading | cell [x](javascript:alert(1)) @team"


@pytest.fixture
def no_ci(monkeypatch):
    for k in prov.CI_VARS:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_outside_ci_there_is_no_ci_run_and_the_operator_never_fails(no_ci, monkeypatch):
    assert prov.ci_context() is None
    user, host = prov.operator()
    assert user and host
    monkeypatch.setattr(prov.getpass, "getuser", lambda: (_ for _ in ()).throw(KeyError("no passwd entry")))
    monkeypatch.setattr(prov.socket, "gethostname", lambda: (_ for _ in ()).throw(OSError("no name")))
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("USERNAME", raising=False)
    assert prov.operator() == ("unknown", "unknown")


def test_github_gitlab_and_jenkins_variables_become_the_ci_run_bounded(no_ci):
    no_ci.setenv("GITHUB_RUN_ID", "4242")
    no_ci.setenv("GITHUB_REPOSITORY", "acme/model")
    no_ci.setenv("GITHUB_SHA", "a" * 40)
    no_ci.setenv("GITHUB_WORKFLOW", HOSTILE + "x" * 500)
    no_ci.setenv("GITHUB_SERVER_URL", "https://github.example")
    gh = prov.ci_context()
    assert gh == CIRun("github-actions", "4242", "acme/model", "a" * 40, (HOSTILE + "x" * 500)[:200],
                       "https://github.example/acme/model/actions/runs/4242")
    assert len(gh.workflow) == prov.VALUE_LIMIT
    gl = prov.ci_context({"CI_PIPELINE_ID": "77", "CI_PROJECT_PATH": "grp/proj", "CI_COMMIT_SHA": "b" * 40,
                          "CI_JOB_URL": "https://gitlab.example/grp/proj/-/jobs/9"})
    assert gl == CIRun("gitlab-ci", "77", "grp/proj", "b" * 40, "", "https://gitlab.example/grp/proj/-/jobs/9")
    jk = prov.ci_context({"BUILD_URL": "https://ci.example/job/x/5/", "GIT_COMMIT": "c" * 40, "JOB_NAME": HOSTILE})
    assert jk == CIRun("jenkins", "", "", "c" * 40, HOSTILE, "https://ci.example/job/x/5/")


def _result(provenance):
    """The smallest result the renderers accept, carrying ``provenance``."""
    from audit.config import AuditConfig
    from audit.core import result as r
    from audit.core.serde import to_data
    from audit.frameworks.controls import editions
    return r.AuditResult(
        schema_version=r.SCHEMA_VERSION, tool={"name": "advaudit", "version": "0"}, created="2026-12-01T00:00:00+00:00",
        verdict=r.Verdict.INCOMPLETE, candidate="baseline",
        dataset=r.DatasetInfo("d", "tabular", 4, 4, 2, (3,), (0.0, 1.0), ("a", "b"), r.SplitHashes("0" * 64, "1" * 64)),
        model=r.ModelInfo("", {}, "an in-memory m.M", "", 10, "M", "m.M"), policy=r.PolicyInfo("p", "1", "2" * 64, "s"),
        config=to_data(AuditConfig()), environment={}, variants=(), findings=(), nist=(), frameworks=editions(),
        provenance=provenance)


def test_hostile_ci_values_render_inert_in_html_and_markdown(no_ci):
    from reports.html import render_html
    from reports.markdown import render_markdown
    ci = prov.ci_context({"JOB_NAME": HOSTILE, "BUILD_URL": "javascript:alert(1)//<b>", "GIT_COMMIT": "[c](x)"})
    p = prov.Provenance(user="<img src=x onerror=alert(1)>", host="h\n## host", started="t", tool_version="0",
                        ci=ci, files=(SuppliedFile("config", "/x/<i>a|b<i>.toml", "3" * 64),))
    html = render_html(_result(p))
    section = html[html.index('id="provenance"'):html.index('id="record"')]
    assert "<script>" not in section and "<img" not in section and "<i>" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "&lt;img src=x" in section
    assert 'href="javascript' not in html and "javascript:alert(1)//&lt;b&gt;" in section  # shown, never a link
    md = render_markdown(_result(p))
    tail = md[md.index("Provenance:"):]
    assert "<script>" not in tail and "](javascript" not in tail and "\n## host" not in tail
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in tail and "commit \\[c\\]\\(x\\)" in tail
    assert "\\# Heading \\| cell \\[x\\]\\(javascript:" in tail.replace("\u200b", "")
    row = next(line for line in tail.splitlines() if line.startswith("| config"))
    assert row.count(" | ") == 2 and "a\\|b" in row  # the hostile path cannot add a cell


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_of_the_config_repository_commit_then_dirty(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert prov.git_state(repo, "config file") is None  # not a repository (yet)
    _git(repo, "init", "-q")
    (repo / "advaudit.toml").write_text("seed = 0\n", encoding="utf-8")
    assert prov.git_state(repo, "config file") is None  # no commit yet
    _git(repo, "add", "advaudit.toml")
    _git(repo, "commit", "-q", "-m", "config")
    clean = prov.git_state(repo, "config file")
    assert clean is not None and clean.commit == _git(repo, "rev-parse", "HEAD") and not clean.dirty
    (repo / "advaudit.toml").write_text("seed = 1\n", encoding="utf-8")
    dirty = prov.git_state(repo, "config file")
    assert dirty is not None and dirty.commit == clean.commit and dirty.dirty
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # no git at all: no state, no failure
    assert prov.git_state(repo, "config file") is None


def test_state_dict_array_and_folder_hashes_are_what_hashlib_gives(tmp_path):
    state = {"b.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a.count": torch.tensor(3),
             "c.half": torch.ones(2, dtype=torch.bfloat16)}
    h = hashlib.sha256()
    for k in ("a.count", "b.weight", "c.half"):   # sorted keys; "<key>\0<dtype>\0<shape>\0" then the bytes
        t = state[k]
        h.update(f"{k}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(bytes(t.reshape(-1).view(torch.uint8).tolist()))
    assert prov.state_sha256(state) == h.hexdigest()
    assert prov.state_sha256(dict(reversed(list(state.items())))) == h.hexdigest()   # order-free
    assert prov.state_sha256({**state, "a.count": torch.tensor(4)}) != h.hexdigest()
    x = np.arange(12, dtype=np.float64).reshape(3, 4).T   # not C-contiguous
    (d,) = prov.array_digests({"x_train": x})
    assert (d.name, d.dtype, d.shape) == ("x_train", "float64", (4, 3))
    assert d.sha256 == hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
    npy = tmp_path / "npy"
    npy.mkdir()
    names = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")
    for i, n in enumerate(names):
        (npy / n).write_bytes(b"N" * (i + 1))
    (npy / "notes.txt").write_bytes(b"not read by the loader")
    lines = "".join(f"{hashlib.sha256(b'N' * (i + 1)).hexdigest()}  {n}\n" for i, n in enumerate(names))
    f = prov.supplied("data (folder of .npy files)", npy, "npy")   # the loader's files, in its order
    assert (f.sha256, f.bytes) == (hashlib.sha256(lines.encode()).hexdigest(), 10)


def test_the_bundle_copy_sits_beside_each_supplied_file_with_why_they_differ(tmp_path):
    from safetensors.torch import save
    state = {"w": torch.ones(2, 2)}
    pt = tmp_path / "model.pt"
    torch.save(state, pt)
    weights = dataclasses.replace(prov.supplied("weights", pt), state_sha256=prov._weights_state(pt, False))
    config = prov.supplied("config", _write(tmp_path / "c.toml", b"seed = 0\n"))
    p = prov.Provenance(user="u", host="h", started="t", tool_version="0", files=(config, weights))
    files = {"config.toml": b"seed = 0\n", "models/baseline.safetensors": save(state)}
    out = {f.role: f for f in prov.with_bundle(p, files, prov.state_sha256(state)).files}
    assert out["config"].bundled_as == "config.toml" and out["config"].bundled_sha256 == config.sha256
    assert not out["config"].note
    w = out["weights"]
    assert w.sha256 == hashlib.sha256(pt.read_bytes()).hexdigest() != w.bundled_sha256
    assert w.bundled_sha256 == hashlib.sha256(files["models/baseline.safetensors"]).hexdigest()
    assert "re-serialised as safetensors from the supplied .pt: the tensors are the same" in w.note
    changed = prov.with_bundle(p, files, prov.state_sha256({"w": torch.zeros(2, 2)})).files[1]
    assert "the state dict differs" in changed.note


def _write(path, data: bytes):
    path.write_bytes(data)
    return path

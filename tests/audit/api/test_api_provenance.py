"""The provenance block end to end: one tiny CLI run (config, policy, npz data, .pt weights and the factory's module
all supplied as files, in a git repository, inside a CI job, ``--bundle-source``) and one tiny ``audit.run`` (an
in-memory MLP and arrays, signed). Each hash is recomputed here with hashlib from the files, the arrays and the
state dict; the API run names the real model class, never the config's default factory."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import audit
from audit.cli import main

CHECKS = ["input_validation", "clean_accuracy"]
MODEL_PY = '''import torch
from torch import nn


def build(d=8, k=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, k))
'''
HAS_GIT = shutil.which("git") is not None


class TinyMLP(nn.Module):
    def __init__(self, d: int = 8, k: int = 3):
        super().__init__()
        self.hidden = nn.Linear(d, 16)
        self.out = nn.Linear(16, k)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
    return {"x_train": x[:200], "y_train": y[:200], "x_test": x[200:], "y_test": y[200:]}


def state_hash(state: dict) -> str:
    """The documented rule, written out again: sorted keys; "<key>\\0<dtype>\\0<shape>\\0", then the bytes."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().contiguous()
        h.update(f"{k}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``advaudit run --bundle-source`` on files the user supplied, committed to git, in a (hostile) GitHub job."""
    d = tmp_path_factory.mktemp("cli")
    (d / "prov_model_cli.py").write_text(MODEL_PY, encoding="utf-8")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    torch.save(model.state_dict(), d / "weights.pt")
    np.savez(d / "data.npz", **arrays())
    (d / "policy.toml").write_bytes(resources.files("audit.config").joinpath("policies/default.toml").read_bytes())
    (d / "advaudit.toml").write_text(
        'seed = 0\ncandidate = "baseline"\npolicy = "policy.toml"\n'
        f"checks = {json.dumps(CHECKS)}\n[data]\nsource = \"npz\"\npath = \"data.npz\"\n"
        '[model]\nfactory = "prov_model_cli:build"\nweights = "weights.pt"\n[attacks]\npreset = "quick"\n',
        encoding="utf-8")
    if HAS_GIT:
        git(d, "init", "-q")
        git(d, "add", "advaudit.toml")
        git(d, "commit", "-q", "-m", "config")
    with pytest.MonkeyPatch.context() as mp:
        for k in ("CI_PIPELINE_ID", "BUILD_URL", "JOB_NAME"):
            mp.delenv(k, raising=False)
        mp.setenv("GITHUB_RUN_ID", "99")
        mp.setenv("GITHUB_REPOSITORY", "acme/model")
        mp.setenv("GITHUB_SERVER_URL", "https://github.com")
        mp.setenv("GITHUB_SHA", "d" * 40)
        mp.setenv("GITHUB_WORKFLOW", "<b>audit</b> | [x](javascript:alert(1))")
        code = main(["-q", "run", "--config", str(d / "advaudit.toml"), "--out", str(d / "out"), "--bundle-source"])
    return code, d, json.loads((d / "out" / "results.json").read_text(encoding="utf-8"))


def test_a_cli_run_records_every_supplied_file_beside_its_bundle_copy(cli_run, capsys):
    code, d, res = cli_run
    assert code in (0, 1, 4)
    p, out = res["provenance"], d / "out"
    files = {f["role"]: f for f in p["files"]}
    assert set(files) == {"config", "policy", "data (npz archive)", "weights", "model factory source"}
    for role, name in (("config", "advaudit.toml"), ("policy", "policy.toml"), ("data (npz archive)", "data.npz"),
                       ("weights", "weights.pt"), ("model factory source", "prov_model_cli.py")):
        assert files[role]["sha256"] == sha(d / name) and Path(files[role]["path"]).name == name
    for role, copy in (("config", "config.toml"), ("policy", "policy.toml"),
                       ("model factory source", "source/prov_model_cli.py")):
        assert files[role]["bundled_as"] == copy and files[role]["bundled_sha256"] == sha(d / "out" / copy)
        assert files[role]["bundled_sha256"] == files[role]["sha256"] and not files[role]["note"]
    assert (out / "source" / "prov_model_cli.py").read_text(encoding="utf-8") == MODEL_PY
    w = files["weights"]
    assert w["bundled_as"] == "models/baseline.safetensors" and w["bundled_sha256"] == sha(out / w["bundled_as"])
    assert w["bundled_sha256"] != w["sha256"] and "the tensors are the same" in w["note"]
    loaded = torch.load(d / "weights.pt", weights_only=True)
    assert w["state_sha256"] == p["model_state_sha256"] == state_hash(loaded)
    assert not files["data (npz archive)"]["bundled_as"]   # data are referenced by hash, never copied
    assert p["data_source"] == "npz" and p["model_class"] == "torch.nn.modules.container.Sequential"
    assert p["ci"]["url"] == "https://github.com/acme/model/actions/runs/99" and p["ci"]["commit"] == "d" * 40
    if HAS_GIT:
        assert p["git"] == {"of": "config file", "commit": git(d, "rev-parse", "HEAD"), "dirty": True,
                            "dirty_unknown": ""}  # untracked
    sums = (out / "SHA256SUMS").read_text(encoding="utf-8")
    assert f"{sha(out / 'source/prov_model_cli.py')}  source/prov_model_cli.py" in sums
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["supplied_files"] == p["files"]
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="provenance"' in html and w["note"] in html and "&lt;b&gt;audit&lt;/b&gt;" in html
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "Provenance: run by" in md and "<b>audit" not in md and "](javascript" not in md


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    assert main(["keygen", str(d / "key")]) == 0
    torch.manual_seed(0)
    model = TinyMLP().eval()
    given = arrays()
    result = audit.run(model=model, data=given, out=d / "out", sign=d / "key",
                       config={"checks": CHECKS, "attacks": {"preset": "quick"}, "output": {"bundle_source": True}})
    return result, model, given, d


def test_an_api_run_names_the_model_class_and_hashes_the_arrays_and_state_dict(api_run, capsys):
    result, model, given, d = api_run
    out = d / "out"
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    p, cls = res["provenance"], f"{TinyMLP.__module__}.TinyMLP"
    assert res["model"]["factory"] == "" and res["model"]["model_class"] == p["model_class"] == cls
    assert res["model"]["source"] == f"an in-memory {cls}" and res["dataset"]["source"] == "in-memory arrays"
    for name in ("results.json", "report.html", "summary.md", "config.json"):
        assert "build_small_cnn" not in (out / name).read_text(encoding="utf-8"), name
    header = (out / "report.html").read_text(encoding="utf-8").split("</header>")[0]
    assert f"model <code>{cls}</code>" in header  # the report's header names the class, never an empty name
    assert p["model_state_sha256"] == state_hash(model.state_dict())
    assert p["data_source"] == "in-memory arrays"
    assert [(a["name"], a["dtype"], tuple(a["shape"]), a["sha256"]) for a in p["arrays"]] == [
        (k, str(v.dtype), v.shape, hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
        for k, v in given.items()]
    src = {f["role"]: f for f in p["files"]}["model class source"]
    assert src["sha256"] == sha(Path(__file__)) == sha(out / "source" / Path(__file__).name)
    assert src["bundled_as"] == f"source/{Path(__file__).name}"
    if HAS_GIT and p["git"] is not None:  # this file's repository
        assert p["git"]["commit"] == git(Path(__file__).parent, "rev-parse", "HEAD")
    from audit.api.mlflow_log import params_of
    params = params_of(result.result)
    if result.result.provenance.git is not None:  # an unknown dirty state is never logged as a clean commit
        import dataclasses
        prov = result.result.provenance
        unknown = dataclasses.replace(prov, git=dataclasses.replace(prov.git, dirty=None))
        logged = params_of(dataclasses.replace(result.result, provenance=unknown))["git_commit"]
        assert logged.endswith("(dirty state unknown)"), logged
    assert params["model"] == f"an in-memory {cls}" and params["model_class"] == cls
    capsys.readouterr()
    assert main(["verify", str(out), "--key", str(d / "key.pub")]) == 0  # signed with sign=


def test_sign_needs_an_output_and_a_key_checked_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr("audit.api.outputs.run_to", lambda *a, **k: pytest.fail("the audit started"))
    with pytest.raises(audit.UsageError, match="sign: .*out="):
        audit.run(model=TinyMLP(), data=arrays(), config={"checks": CHECKS}, sign=tmp_path / "key")
    with pytest.raises(audit.UsageError, match="sign_key: key file not found"):
        audit.run(model=TinyMLP(), data=arrays(), config={"checks": CHECKS}, sign=tmp_path / "key",
                  out=tmp_path / "out")
    with pytest.raises(audit.UsageError, match="sign: give"):
        audit.run(model=TinyMLP(), data=arrays(), config={"checks": CHECKS}, sign=3, out=tmp_path / "out")

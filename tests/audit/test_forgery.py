"""Nothing a name, a key or a file can forge (issue 25): hostile names never write outside --out, keys and
tracking URIs and Ray addresses are checked before any work, sizes are bounded, and the two "audit with a
warning" inputs give a complete audit."""
from __future__ import annotations

import io
import os
import socket
import threading
import time
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audit.cli import main
from audit.config.names import NAME_PATTERN
from audit.core.errors import UsageError
from audit.evidence.outdir import inside, write_inside
from audit.models.reference import SmallCNN
from tests.helpers import snapshot

FAST = 'checks = ["input_validation", "clean_accuracy"]\n'
HOSTILE = ["../evil", "../../etc/x", "a/b", "/abs", ".hidden", "..", "x\ny", "a\\b", "name with space",
           "<script>", "x" * 65, "", "ok/../../up"]


def no_training(*_a, **_k):
    raise AssertionError("a bad input reached training")


@pytest.fixture
def project(tmp_path, digits, monkeypatch):
    """A user project inside tmp_path/proj: data.npz, weights.safetensors, and a config writer."""
    d = tmp_path / "proj"
    d.mkdir()
    np.savez(d / "data.npz", x_train=digits.x_train[:120].numpy(), y_train=digits.y_train[:120].numpy(),
             x_test=digits.x_test[:60].numpy(), y_test=digits.y_test[:60].numpy())
    torch.manual_seed(0)
    save_file(SmallCNN().state_dict(), str(d / "w.safetensors"))
    monkeypatch.setattr("audit.methods.jobs.train", no_training)

    def config(extra: str = "", checks: str = FAST, data: str = 'path = "data.npz"', model: str = "") -> os.PathLike:
        (d / "c.toml").write_text(f'{checks}{extra}\n[data]\nsource = "npz"\n{data}\n[model]\n'
                                  f'weights = "w.safetensors"\n{model}\n', encoding="utf-8")
        return d / "c.toml"
    return d, config


def every_file(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_defence_or_deployment_name_is_exit_2_and_writes_nothing(project, tmp_path, capsys, name):
    d, config = project
    before = every_file(tmp_path)
    toml_name = name.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    for table in (f'[[defences]]\nname = "{toml_name}"\nweights = "w.safetensors"\n',
                  f'[[deployments]]\nname = "{toml_name}"\nmethod = "fp16"\n'):
        code = main(["run", "--config", str(config(table)), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "name" in err
        assert every_file(tmp_path) == before | {"proj/c.toml"}


def test_the_name_rule_admits_ordinary_names_only():
    for ok in ("pgd_at", "trades-6", "v1.2", "A", "x" * 64):
        assert NAME_PATTERN.fullmatch(ok)
    for bad in HOSTILE:
        assert not NAME_PATTERN.fullmatch(bad)


def test_hostile_display_strings_run_and_stay_inside_out(project, tmp_path, capsys):
    """Class names and the threat model's name may hold any text: the run writes every format inside --out."""
    d, config = project
    names = ", ".join(f'"../../c{i}\\n# advaudit: GO <img src=x onerror=alert(1)> @team ](javascript:x)"'
                      for i in range(10))
    cfg = config('[threat_model]\neps = 0.1\nname = "../../tm\\n# advaudit: GO"\n',
                 data=f'path = "data.npz"\nclass_names = [{names}]')
    before = every_file(tmp_path)
    code = main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--format", "md,csv"])
    assert code in (0, 1, 4), capsys.readouterr().err
    new = every_file(tmp_path) - before
    assert new and all(p == "out" or p.startswith("out/") for p in new), new
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert not any(line.startswith("# advaudit") for line in summary.splitlines())


@pytest.mark.parametrize("rel", ["../x", "/etc/x", "a/../../x", "a//b", "./x", "x\x00y", "x\ny", "a\\b", ""])
def test_inside_refuses_every_name_that_leaves_the_output(tmp_path, rel):
    with pytest.raises(UsageError):
        inside(tmp_path / "out", rel)


def test_write_inside_refuses_a_symlinked_folder(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "models").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="symbolic link"):
        write_inside(out, "models/x.safetensors", b"1")
    assert not any(elsewhere.iterdir())
    assert write_inside(out, "a/b.txt", "hi").read_text() == "hi"


def _keys(d):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    ed = ed25519.Ed25519PrivateKey.generate()
    pem = serialization.Encoding.PEM
    keys = {
        "encrypted": ed.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"secret")),
        "rsa": rsa.generate_private_key(65537, 2048).private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                  serialization.NoEncryption()),
        "public": ed.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
        "empty": b"", "random": os.urandom(300)}
    for name, data in keys.items():
        (d / f"{name}.pem").write_bytes(data)
    return keys


@pytest.mark.parametrize("kind,words", [("encrypted", "ADVAUDIT_SIGN_PASSPHRASE"), ("rsa", "not an Ed25519"),
                                        ("public", "public key"), ("empty", "empty"),
                                        ("random", "not a PEM private key")])
def test_a_bad_signing_key_is_refused_before_any_work(project, tmp_path, capsys, kind, words):
    d, config = project
    _keys(d)
    out = tmp_path / "out"
    assert main(["run", "--config", str(config()), "--out", str(out)]) in (0, 1, 4)
    before = snapshot(out)
    capsys.readouterr()  # drop the first, successful run's progress lines
    start = time.perf_counter()
    code = main(["run", "--config", str(config()), "--out", str(out), "--sign", str(d / f"{kind}.pem")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert time.perf_counter() - start < 10
    assert snapshot(out) == before


def test_an_encrypted_key_signs_with_its_passphrase(project, tmp_path, capsys, monkeypatch):
    d, config = project
    _keys(d)
    monkeypatch.setenv("ADVAUDIT_SIGN_PASSPHRASE", "secret")
    out = tmp_path / "out"
    assert main(["run", "--config", str(config()), "--out", str(out), "--sign", str(d / "encrypted.pem")]) in (0, 1, 4)
    assert (out / "attestation.dsse.json").is_file()
    monkeypatch.setenv("ADVAUDIT_SIGN_PASSPHRASE", "wrong")
    assert main(["run", "--config", str(config()), "--out", str(out), "--sign", str(d / "encrypted.pem")]) == 2
    assert "does not decrypt" in capsys.readouterr().err


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never answers (not a Ray head, not an MLflow server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


@pytest.mark.slow
def test_a_port_that_is_not_a_ray_head_is_refused_quickly_and_quietly(silent_port):
    from audit.engine.execution.ray_cluster import unreachable
    start = time.perf_counter()
    why = unreachable(f"127.0.0.1:{silent_port}")
    assert "not a Ray head" in why
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("uri,words", [("ftp://host/runs", "not an MLflow store"), ("http://", "names no host"),
                                       ("sqlite://", "sqlite:///"), ("not a uri ::", "neither a path"),
                                       ("http://127.0.0.1:1", "cannot reach"), ("DATA", "is not a directory")])
def test_a_bad_tracking_uri_is_exit_2_before_work_and_the_output_stays(project, tmp_path, capsys, uri, words):
    pytest.importorskip("mlflow")
    d, config = project
    uri = str(d / "data.npz") if uri == "DATA" else uri
    out = tmp_path / "out"
    assert main(["run", "--config", str(config()), "--out", str(out)]) in (0, 1, 4)
    before = snapshot(out)
    capsys.readouterr()  # drop the first, successful run's progress lines
    cfg = config(f'[tracking]\nmlflow = true\ntracking_uri = "{uri}"\n')
    code = main(["run", "--config", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(out) == before


def test_a_tracking_store_that_fails_after_the_audit_costs_one_warning(project, tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    d, config = project

    def gone(*_a, **_k):
        raise ConnectionError("the server went away\nsecond line")
    monkeypatch.setattr("audit.api.mlflow_log.log_run", gone)
    out = tmp_path / "out"
    store = f'[tracking]\nmlflow = true\ntracking_uri = "sqlite:///{tmp_path / "m.db"}"\n'
    code = main(["run", "--config", str(config(store)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code in (0, 1, 4) and (out / "results.json").is_file()
    assert "could not log the run to MLflow" in err and "second line" not in err


@pytest.mark.parametrize("extra,words", [
    ("[attacks]\neps = [" + ", ".join(f"{0.0001 * (i + 1):.4f}" for i in range(10_000)) + "]\n", "at most 32"),
    ("[training]\nepochs = 1000000\n", "training.epochs"),
    ("[attacks]\nbatch_size = 1000000000000\n", "attacks.batch_size"),
    ("[label_issues]\nfolds = 100000\n", "label_issues.folds"),
    ("[[deployments]]\nname = \"p\"\nmethod = \"prune\"\nfinetune_epochs = 1000000000\n", "finetune_epochs"),
    ("[attacks]\nsquare_queries = 100000000\n", "square_queries"),
])
def test_sizes_past_their_bound_are_exit_2_naming_the_bound(project, tmp_path, capsys, extra, words):
    d, config = project
    code = main(["run", "--config", str(config(extra)), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "bound" in err, err


def test_folds_beyond_the_smallest_class_are_exit_2(project, tmp_path, capsys):
    d, config = project
    cfg = config("[label_issues]\nfolds = 50\n", checks='checks = ["input_validation", "label_issues"]\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "smallest class" in capsys.readouterr().err


def _npy_header(shape) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return b.getvalue()


def test_an_npz_that_declares_more_than_memory_is_refused_unread(project, tmp_path, capsys, monkeypatch):
    d, config = project
    base = dict(np.load(d / "data.npz"))
    with zipfile.ZipFile(d / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        for k in ("y_train", "x_test", "y_test"):
            b = io.BytesIO()
            np.save(b, base[k])
            z.writestr(f"{k}.npy", b.getvalue())
        with z.open("x_train.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header((12_500_000_000,)))  # 50 GB declared
            fh.write(bytes(1 << 20))
    read = []
    monkeypatch.setattr("numpy.lib.format.read_array", lambda *a, **k: read.append(1))
    code = main(["run", "--config", str(config(data='path = "bomb.npz"')), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "declares 50 GB" in err and not read, err


def test_max_memory_gb_bounds_an_honest_archive_too(project, tmp_path, capsys):
    d, config = project
    cfg = config(data='path = "data.npz"\nmax_memory_gb = 0.00001')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "data.max_memory_gb" in capsys.readouterr().err


def test_eps_in_pixel_units_is_named_before_the_policy(project, tmp_path, capsys):
    d, config = project
    assert main(["run", "--config", str(config("[attacks]\neps = [8.0]\n")), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "8 exceeds" in err and "policy" not in err, err


class FailsOnLargeBatches(SmallCNN):
    def forward(self, x):
        if x.shape[0] > 100:
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().forward(x)


def test_a_model_that_fails_on_large_batches_is_named_in_pre_flight(project, tmp_path, capsys):
    d, config = project
    (d / "bigfail.py").write_text("from tests.audit.test_forgery import FailsOnLargeBatches\n\n\ndef build():\n"
                                  "    return FailsOnLargeBatches()\n", encoding="utf-8")
    config(model='factory = "bigfail:build"')
    code = main(["run", "--config", str(d / "c.toml"), "--out", str(tmp_path / "o"), "--set",
                 "attacks.batch_size=512"])
    err = capsys.readouterr().err
    assert code == 2 and "batch of" in err and "at most 64" in err, err
    code = main(["run", "--config", str(d / "c.toml"), "--out", str(tmp_path / "o"), "--set",
                 "attacks.batch_size=64", "--set", "training.batch_size=64"])
    assert code in (0, 1, 4), capsys.readouterr().err


def test_a_weights_file_that_needs_pickle_does_not_suggest_the_unsafe_retry(project, tmp_path, capsys):
    d, config = project
    torch.save({"model": SmallCNN()}, d / "full.pt")
    cfg = config().read_text(encoding="utf-8").replace("w.safetensors", "full.pt")
    (d / "c.toml").write_text(cfg, encoding="utf-8")
    assert main(["run", "--config", str(d / "c.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "weights_only" not in err and "\x1b" not in err and "trust_pickle" in err, err


def test_dry_run_prints_the_plan_and_an_estimate_and_writes_nothing(project, tmp_path, capsys):
    d, config = project
    before = every_file(tmp_path)
    cfg = config('[[defences]]\nname = "pgd_at"\nmethod = "pgd"\n[threat_model]\neps = 0.1\n', checks="")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert every_file(tmp_path) == before | {"proj/c.toml"}
    for words in ("checks, in order:", "eps grid", "train pgd_at", "check robustness:pgd_at", "estimated wall time"):
        assert words in text, text
    seconds = float(text.split("estimated wall time: ")[1].split(" s")[0])
    assert seconds > 0


# --- holes found by the adversarial review -------------------------------------------------------------------

def test_triage_csv_cells_cannot_run_as_formulas():
    from reports.triage_csv import _cell
    for evil in ("=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(1)", "\tx", "\rx"):
        assert _cell(evil).startswith("'")
    assert _cell(-0.5) == -0.5 and _cell("cat") == "cat"


def test_an_auditconfig_from_python_is_checked_like_a_file(digits):
    import dataclasses

    import audit
    from audit.config import AuditConfig
    from audit.config.tracking import TrackingConfig
    cfg = AuditConfig(tracking=TrackingConfig(mlflow=False, experiment="../../etc"))
    with pytest.raises(audit.UsageError, match="tracking.experiment"):
        audit.run(config=cfg, model=SmallCNN(), data=dict(x_train=digits.x_train[:50], y_train=digits.y_train[:50],
                                                          x_test=digits.x_test[:30], y_test=digits.y_test[:30]))
    nan_attacks = dataclasses.replace(AuditConfig().attacks, eps=(float("nan"),))
    bad_eps = dataclasses.replace(AuditConfig(), attacks=nan_attacks)
    with pytest.raises(audit.UsageError, match="finite"):
        audit.run(config=bad_eps, model=SmallCNN())


def test_an_npz_whose_headers_cannot_be_read_is_not_decompressed(project, tmp_path, capsys, monkeypatch):
    """A corrupt sibling member must not switch the size check off (the bomb beside it would be decompressed)."""
    d, config = project
    np.savez_compressed(d / "packed.npz", **dict(np.load(d / "data.npz")))
    raw = bytearray((d / "packed.npz").read_bytes())
    with zipfile.ZipFile(d / "packed.npz") as z:
        info = z.getinfo("y_train.npy")
    local = info.header_offset
    start = local + 30 + int.from_bytes(raw[local + 26:local + 28], "little") + \
        int.from_bytes(raw[local + 28:local + 30], "little")
    raw[start:start + 4] = b"\xff\xff\xff\xff"  # the deflate stream of y_train is garbage from its first byte
    (d / "broken.npz").write_bytes(bytes(raw))
    read = []
    monkeypatch.setattr("numpy.lib.format.read_array", lambda *a, **k: read.append(1))
    code = main(["run", "--config", str(config(data='path = "broken.npz"')), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "not a readable .npz" in err and not read, err


def test_huge_numbers_in_a_config_are_usage_errors():
    from audit.engine.configure import from_mapping
    with pytest.raises(UsageError, match="too large"):
        from_mapping({"threat_model": {"eps": 10 ** 400}})


def test_a_deeply_nested_envelope_is_a_verify_problem_not_a_crash(tmp_path):
    from audit.evidence.signing import ENVELOPE, verify_envelope
    (tmp_path / ENVELOPE).write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    problems = verify_envelope(tmp_path / ENVELOPE, {}, None)
    assert problems and "malformed" in problems[0]


@pytest.mark.parametrize("uri", ["http://[::1", "http://[zz]:5000", "http://a..b:5000", "http://h:99999"])
def test_malformed_tracking_uris_are_usage_errors(uri):
    pytest.importorskip("mlflow")
    from audit.api.tracking_check import check_tracking_uri
    with pytest.raises(UsageError):
        check_tracking_uri(uri)


@pytest.mark.parametrize("address", ["127.0.0.1:99999999999999999999", "ray://h:\u00b2", "a..b:10001"])
def test_malformed_ray_addresses_are_named(address):
    from audit.engine.execution.ray_cluster import unreachable
    assert unreachable(address)


def test_a_password_in_a_tracking_uri_is_not_printed():
    pytest.importorskip("mlflow")
    from audit.api.tracking_check import check_tracking_uri
    with pytest.raises(UsageError) as e:
        check_tracking_uri("http://user:hunter2@127.0.0.1:1")
    assert "hunter2" not in str(e.value) and "***" in str(e.value)


def test_a_passphrase_that_is_not_utf8_is_a_usage_error(project, monkeypatch):
    d, _ = project
    _keys(d)
    from audit.evidence.signing import load_private
    monkeypatch.setenv("ADVAUDIT_SIGN_PASSPHRASE", "\udcff")
    with pytest.raises(UsageError):
        load_private(d / "encrypted.pem")


def test_demo_flags_are_validated(tmp_path, capsys):
    assert main(["demo", "--seed", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "seed" in capsys.readouterr().err


def test_markdown_cannot_fake_status_icons_or_issue_links():
    from audit.core.text import md_inline
    assert ":x:" not in md_inline("all good :x: :white_check_mark:")
    assert "#12" not in md_inline("fixes #12") and "GH-1" not in md_inline("GH-1")


@pytest.mark.slow
def test_a_tracking_server_that_accepts_but_never_answers_is_refused(silent_port):
    pytest.importorskip("mlflow")
    from audit.api.tracking_check import check_tracking_uri
    with pytest.raises(UsageError, match="no HTTP answer"):
        check_tracking_uri(f"http://127.0.0.1:{silent_port}")


def test_npy_labels_and_tables_are_sized_before_they_are_read(tmp_path):
    from types import SimpleNamespace

    from audit.data.sources.npy import _labels
    from audit.data.sources.table import check_table_size
    with open(tmp_path / "y.npy", "wb") as fh:
        fh.write(_npy_header((12_500_000_000,)))
        fh.write(bytes(64))
    with pytest.raises(UsageError, match="truncated"):
        _labels(tmp_path / "y.npy")
    np.save(tmp_path / "ok.npy", np.arange(1000, dtype=np.int64))
    small = SimpleNamespace(max_memory_gb=1e-6)
    with pytest.raises(UsageError, match="max_memory_gb"):
        _labels(tmp_path / "ok.npy", small)
    (tmp_path / "t.csv").write_text("a,label\n" + "1,0\n" * 1000)
    with pytest.raises(UsageError, match="max_memory_gb"):
        check_table_size(small, tmp_path / "t.csv")
    check_table_size(SimpleNamespace(max_memory_gb=1.0), tmp_path / "t.csv")


def test_a_huge_first_image_needs_an_image_size(tmp_path):
    from PIL import Image

    from audit.config.sections import DataConfig
    from audit.data.sources.folder import load_folder
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.new("L", (5000, 8) if (c, i) == ("a", 0) else (8, 8)).save(tmp_path / c / f"{i}.png")
    with pytest.raises(UsageError, match="image_size"):
        load_folder(DataConfig(source="folder", path=str(tmp_path), channels=1), tmp_path)


# --- holes found by the second review --------------------------------------------------------------------------

def test_a_results_json_whose_verdict_contradicts_its_findings_is_refused(demo_run, tmp_path, capsys):
    import json
    data = json.loads(json.dumps(demo_run[2]))
    data["verdict"] = "no-go" if data["verdict"] == "go" else "go"
    (tmp_path / "r.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["render", str(tmp_path / "r.json"), "--out", str(tmp_path / "o")]) == 2
    assert "field verdict" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_config_and_policy_files_must_be_small_regular_files(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.toml")
    for path in (tmp_path / "fifo.toml", "/dev/zero"):
        assert main(["run", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    (tmp_path / "deep.toml").write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert main(["compare", "a.json", "b.json", "--policy", str(tmp_path / "deep.toml")]) == 2


def test_nul_bytes_in_paths_are_usage_errors(tmp_path, capsys):
    assert main(["run", "--config", "a\x00b", "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "c.toml").write_text('policy = "a\\u0000b"\n')
    assert main(["run", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "NUL" in capsys.readouterr().err


def test_keygen_never_writes_through_a_link(tmp_path):
    victim = tmp_path / "victim"
    (tmp_path / "k.pub").symlink_to(victim)
    assert main(["keygen", str(tmp_path / "k")]) == 2
    assert not victim.exists() and not (tmp_path / "k").exists()


def test_verify_with_an_odd_key_or_envelope_is_a_clear_answer(tmp_path, capsys):
    import json

    from audit.evidence.manifest import write_manifest
    from audit.evidence.signing import ENVELOPE, verify_envelope
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "report.html").write_text("r")
    write_manifest(bundle, {"advaudit": "test"})
    for key in ("/dev/zero", str(bundle / "report.html")):
        assert main(["verify", str(bundle), "--key", key]) in (1, 2)
        assert "internal error" not in capsys.readouterr().err
    import base64
    stmt = {"subject": [{"name": 1, "digest": {"sha256": "a"}}, {"name": "x", "digest": {"sha256": "b"}}]}
    (bundle / ENVELOPE).write_text(json.dumps({"payload": base64.b64encode(json.dumps(stmt).encode()).decode(),
                                               "signatures": []}))
    assert "malformed" in verify_envelope(bundle / ENVELOPE, {}, None)[0]


def test_pred_probs_are_sized_by_their_header(tmp_path):
    from audit.methods.label_issues import read_pred_probs
    with open(tmp_path / "p.npy", "wb") as fh:
        fh.write(_npy_header((10 ** 6, 10 ** 6)))
    with pytest.raises(UsageError, match="shape"):
        read_pred_probs(tmp_path / "p.npy", 100, 10)
    np.savez(tmp_path / "p.npz", x=np.zeros((100, 10)))
    with pytest.raises(UsageError):
        read_pred_probs(tmp_path / "p.npz", 100, 10)

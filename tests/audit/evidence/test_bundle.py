"""The evidence bundle: weights, config, policy and reports hashed in a manifest that advaudit and sha256sum -c
check; any changed byte of any listed file is detected by name; an optional Ed25519 DSSE signature."""
import base64
import json
import shutil
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from audit.cli import main
from audit.core.hashing import sha256_file
from audit.evidence.manifest import MANIFEST, SUMS
from audit.evidence.signing import ENVELOPE

pytestmark = pytest.mark.slow
BUNDLE_FILES = {"report.html", "results.json", "summary.md", "triage.csv", "config.json", "policy.toml",
                "models/baseline.safetensors", "models/pgd_at.safetensors", MANIFEST}


def listed(out):
    return [line.split("  ", 1)[1] for line in (out / SUMS).read_text().splitlines()]


def test_demo_bundle_holds_weights_config_policy_and_verifies(demo_run, capsys):
    _code, out, results = demo_run
    assert set(listed(out)) == BUNDLE_FILES
    assert main(["verify", str(out)]) == 0
    assert "hashes consistent; not signed" in capsys.readouterr().out
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "-c", "--quiet", SUMS], cwd=out, check=True)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["data"]["splits_sha256"] == results["dataset"]["sha256"]
    assert {"python", "torch", "adversarial-robustness-toolbox", "cleanlab", "device"} <= set(manifest["environment"])
    assert sha256_file(out / "policy.toml") == results["policy"]["sha256"]
    assert json.loads((out / "config.json").read_text()) == results["config"]


def test_bundled_weights_reproduce_the_reported_clean_accuracy(demo_run, digits):
    _code, out, results = demo_run
    from audit.models.reference import SmallCNN
    for v in results["variants"]:
        model = SmallCNN()
        model.load_state_dict(load_file(str(out / "models" / f"{v['name']}.safetensors")))
        with torch.no_grad():
            correct = int((model.eval()(digits.x_test).argmax(1) == digits.y_test).sum())
        assert correct == v["clean_accuracy"]["correct"]


@pytest.mark.parametrize("name", sorted(BUNDLE_FILES))
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


def test_missing_added_file_and_non_bundle(demo_run, tmp_path, capsys):
    _code, out, _ = demo_run
    copy = tmp_path / "bundle"
    shutil.copytree(out, copy)
    (copy / "summary.md").unlink()
    (copy / "models" / "extra.safetensors").write_bytes(b"x")
    assert main(["verify", str(copy)]) == 1
    text = capsys.readouterr().out
    assert "summary.md: missing" in text and "models/extra.safetensors: not listed" in text
    assert main(["verify", str(tmp_path)]) == 2


@pytest.fixture
def signed(demo_result, demo_run, tmp_path, capsys):
    """The demo result written again with its bundle files and signed with a fresh key."""
    from audit.api.outputs import render
    from audit.evidence.output import write_outputs
    _code, out, _ = demo_run
    assert main(["keygen", str(tmp_path / "key")]) == 0
    files = {n: (out / n).read_bytes() for n in ("config.json", "policy.toml", "models/baseline.safetensors")}
    write_outputs(demo_result, tmp_path / "b", render(demo_result, ("html", "json", "md")), files=files,
                  sign_key=tmp_path / "key")
    capsys.readouterr()
    return tmp_path / "b", tmp_path / "key.pub"


def test_a_signed_bundle_verifies_with_its_key_as_an_in_toto_dsse_envelope(signed, capsys):
    bundle, pub = signed
    env = json.loads((bundle / ENVELOPE).read_text())
    stmt = json.loads(base64.b64decode(env["payload"]))
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    names = {s["name"] for s in stmt["subject"]}
    assert {"report.html", "results.json", "models/baseline.safetensors", SUMS, MANIFEST} <= names
    assert main(["verify", str(bundle), "--key", str(pub)]) == 0
    assert "signature verifies" in capsys.readouterr().out


def test_signature_catches_a_consistent_rewrite_and_a_wrong_key(signed, tmp_path, capsys):
    bundle, pub = signed
    # an attacker edits the results and regenerates SHA256SUMS and the manifest: only the signature notices
    from audit.evidence.manifest import write_manifest
    r = json.loads((bundle / "results.json").read_text())
    r["verdict"] = "go" if r["verdict"] != "go" else "no-go"
    (bundle / "results.json").write_text(json.dumps(r))
    env = (bundle / ENVELOPE).read_bytes()
    (bundle / ENVELOPE).unlink()
    write_manifest(bundle, {})
    (bundle / ENVELOPE).write_bytes(env)
    assert main(["verify", str(bundle), "--key", str(pub)]) == 1
    assert "results.json: changed since signing" in capsys.readouterr().out
    main(["keygen", str(tmp_path / "other")])
    assert main(["verify", str(bundle), "--key", str(tmp_path / "other.pub")]) == 1
    assert "signature does not verify" in capsys.readouterr().out


def test_keygen_never_overwrites(tmp_path, capsys):
    assert main(["keygen", str(tmp_path / "k")]) == 0
    assert main(["keygen", str(tmp_path / "k")]) == 2
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0  # private key readable by its owner only


def _copy(out, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(out, copy)
    return copy


def test_verify_a_file_hidden_in_a_symlinked_folder_is_a_problem_not_a_blind_spot(demo_run, tmp_path, capsys):
    copy = _copy(demo_run[1], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "payload.bin").write_bytes(b"never checked before")
    (copy / "extra").symlink_to(elsewhere, target_is_directory=True)
    assert main(["verify", str(copy)]) == 1
    assert "FAILED extra: a symbolic link" in capsys.readouterr().out


def test_verify_a_listed_file_reached_through_a_link_is_refused(demo_run, tmp_path, capsys):
    copy = _copy(demo_run[1], tmp_path)
    shutil.move(str(copy / "models"), str(tmp_path / "models-outside"))
    (copy / "models").symlink_to(tmp_path / "models-outside", target_is_directory=True)
    assert main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "models/baseline.safetensors: path outside the bundle or through a link" in out


def test_verify_invalid_utf8_in_sha256sums_fails_naming_the_file_not_a_crash(demo_run, tmp_path, capsys):
    copy = _copy(demo_run[1], tmp_path)
    (copy / SUMS).write_bytes((copy / SUMS).read_bytes() + b"\xff\xfe  report.html\n")
    assert main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {SUMS}: not UTF-8" in out


@pytest.mark.parametrize("statement", [[], {"_type": "x", "subject": "not a list"}, {"subject": [{"name": 1}]}])
def test_verify_a_malformed_attestation_fails_naming_the_file(demo_run, tmp_path, capsys, statement):
    copy = _copy(demo_run[1], tmp_path)
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    (copy / ENVELOPE).write_text(json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": payload,
                                             "signatures": []}))
    assert main(["verify", str(copy)]) == 1
    assert f"FAILED {ENVELOPE}: malformed" in capsys.readouterr().out

"""``advaudit sign DIR --key KEY`` signs an existing output after the run (verified first, atomically, the sign-off in
the manifest and the attestation), and ``advaudit verify`` calls a signed bundle verified only with a pinned key:
a bundle re-signed with another key fails with the first key (exit 1) and without a key is not called verified
(exit 5, the signer's fingerprint printed)."""
import base64
import hashlib
import json
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from audit.cli import EXIT_UNPINNED, main
from audit.evidence.manifest import MANIFEST, SUMS, write_manifest
from audit.evidence.signing import ENVELOPE, PAYLOAD_TYPE, pae

pytestmark = pytest.mark.slow


def fingerprint(pub_path) -> str:
    key = serialization.load_pem_public_key(pub_path.read_bytes())
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def statement(bundle) -> dict:
    return json.loads(base64.b64decode(json.loads((bundle / ENVELOPE).read_text())["payload"]))


@pytest.fixture
def bundle(demo_run, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(demo_run[1], copy)
    assert not (copy / ENVELOPE).exists()
    return copy


def test_sign_then_verify_pins_the_signer(bundle, keys, capsys):
    k1, k2 = keys
    assert main(["sign", str(bundle), "--key", str(k1), "--reviewer", "Ann Auditor", "--role", "Model risk"]) == 0
    assert fingerprint(k1.with_suffix(".pub")) in capsys.readouterr().out
    assert main(["verify", str(bundle), "--key", str(k1) + ".pub"]) == 0
    assert "signature verifies with the pinned key" in capsys.readouterr().out
    assert main(["verify", str(bundle)]) == EXIT_UNPINNED == 5
    out = capsys.readouterr().out
    assert "NOT VERIFIED" in out and fingerprint(k1.with_suffix(".pub")) in out and "bundle verified" not in out
    assert main(["verify", str(bundle), "--key", fingerprint(k1.with_suffix(".pub"))]) == 0
    # the same bundle re-signed with another key: the first key no longer verifies it
    assert main(["sign", str(bundle), "--key", str(k2), "--force"]) == 0
    capsys.readouterr()
    assert main(["verify", str(bundle), "--key", str(k1) + ".pub"]) == 1
    assert "signature does not verify" in capsys.readouterr().out
    assert main(["verify", str(bundle), "--key", fingerprint(k1.with_suffix(".pub"))]) == 1
    assert main(["verify", str(bundle)]) == 5
    assert fingerprint(k2.with_suffix(".pub")) in capsys.readouterr().out
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "-c", "--quiet", SUMS], cwd=bundle, check=True)


def test_sign_records_the_signoff_in_the_manifest_and_the_attestation(bundle, keys, capsys):
    k1, _ = keys
    assert main(["sign", str(bundle), "--key", str(k1), "--reviewer", "Zoë <b>Q</b>", "--role", "CISO"]) == 0
    stmt = statement(bundle)
    signoff = stmt["predicate"]["signoff"]
    assert signoff["reviewer"] == "Zoë <b>Q</b>" and signoff["role"] == "CISO"
    assert signoff["key_fingerprint"] == fingerprint(k1.with_suffix(".pub"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", signoff["signed_at"])
    assert json.loads((bundle / MANIFEST).read_text())["signoff"] == signoff
    subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    assert {MANIFEST, SUMS, "results.json", "report.html", "models/pgd_at.safetensors"} <= set(subjects)
    assert subjects[MANIFEST] == hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest()
    assert not list(bundle.parent.glob(".b.*"))  # no partial sibling left behind


def test_sign_refuses_a_tampered_or_partial_bundle(bundle, keys, capsys):
    k1, _ = keys
    data = bytearray((bundle / "results.json").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / "results.json").write_bytes(bytes(data))
    before = (bundle / MANIFEST).read_bytes()
    assert main(["sign", str(bundle), "--key", str(k1)]) == 1
    captured = capsys.readouterr()
    assert "FAILED results.json: changed" in captured.out and "not signing it" in captured.err
    assert not (bundle / ENVELOPE).exists() and (bundle / MANIFEST).read_bytes() == before
    (bundle / SUMS).unlink()  # an output whose writing never finished
    assert main(["sign", str(bundle), "--key", str(k1)]) == 2
    assert "no SHA256SUMS" in capsys.readouterr().err and not (bundle / ENVELOPE).exists()


def test_signing_twice_needs_force_and_replaces_the_signature(bundle, keys, capsys):
    k1, k2 = keys
    assert main(["sign", str(bundle), "--key", str(k1)]) == 0
    first = (bundle / ENVELOPE).read_bytes()
    assert main(["sign", str(bundle), "--key", str(k2)]) == 2
    assert "already signed" in capsys.readouterr().err
    assert (bundle / ENVELOPE).read_bytes() == first
    assert main(["sign", str(bundle), "--key", str(k2), "--force", "--reviewer", "Bo"]) == 0
    env = json.loads((bundle / ENVELOPE).read_text())
    assert len(env["signatures"]) == 1 and env["signatures"][0]["keyid"] == fingerprint(k2.with_suffix(".pub"))
    assert json.loads((bundle / MANIFEST).read_text())["signoff"]["reviewer"] == "Bo"


@pytest.mark.parametrize("name", ["Eve\x1b[2J", "line\nbreak", "nul\x00", "x" * 201, "a\u2028b", "c\x85d"])
def test_hostile_reviewer_names_are_refused_before_anything_is_written(bundle, keys, capsys, name):
    k1, _ = keys
    before = (bundle / SUMS).read_bytes()
    for flag in ("--reviewer", "--role"):
        from audit.core.errors import UsageError
        from audit.evidence.sign import sign_bundle
        with pytest.raises(UsageError, match=flag):
            sign_bundle(bundle, k1, **{flag.lstrip("-"): name})
    if "\x00" not in name:
        assert main(["sign", str(bundle), "--key", str(k1), "--reviewer", name]) == 2
    assert not (bundle / ENVELOPE).exists() and (bundle / SUMS).read_bytes() == before


def test_a_consistent_rewrite_re_signed_by_an_attacker_is_never_verified(bundle, keys, capsys):
    """The attack of issue 28: results edited, SHA256SUMS and the manifest regenerated, re-signed with the
    attacker's key. Before, `verify` without --key said verified (exit 0)."""
    k1, k2 = keys
    assert main(["sign", str(bundle), "--key", str(k1)]) == 0
    r = json.loads((bundle / "results.json").read_text())
    r["candidate"] = "baseline"
    (bundle / "results.json").write_text(json.dumps(r))
    (bundle / ENVELOPE).unlink()
    write_manifest(bundle, {})
    assert main(["sign", str(bundle), "--key", str(k2)]) == 0
    capsys.readouterr()
    assert main(["verify", str(bundle)]) == 5
    assert main(["verify", str(bundle), "--key", str(k1) + ".pub"]) == 1


def test_an_envelope_naming_another_key_than_the_one_that_signed_fails(bundle, keys, capsys):
    """The attacker signs with their key but names the victim's public key in the sign-off."""
    k1, k2 = keys
    assert main(["sign", str(bundle), "--key", str(k1)]) == 0
    victim = statement(bundle)["predicate"]["signoff"]
    assert main(["sign", str(bundle), "--key", str(k2), "--force"]) == 0
    stmt = statement(bundle)
    stmt["predicate"]["signoff"].update(public_key=victim["public_key"], key_fingerprint=victim["key_fingerprint"])
    payload = json.dumps(stmt).encode()
    attacker = serialization.load_pem_private_key(k2.read_bytes(), password=None)
    sig = attacker.sign(pae(PAYLOAD_TYPE, payload))
    (bundle / ENVELOPE).write_text(json.dumps({"payloadType": PAYLOAD_TYPE,
                                               "payload": base64.b64encode(payload).decode(), "signatures": [
                                                   {"keyid": victim["key_fingerprint"],
                                                    "sig": base64.b64encode(sig).decode()}]}))
    capsys.readouterr()
    assert main(["verify", str(bundle)]) == 1
    assert "does not verify with the public key its sign-off names" in capsys.readouterr().out
    assert main(["verify", str(bundle), "--key", victim["key_fingerprint"]]) == 1


def test_trusted_keys_file_pins_by_fingerprint_or_pem(bundle, keys, tmp_path, capsys):
    k1, k2 = keys
    assert main(["sign", str(bundle), "--key", str(k1)]) == 0
    trusted = tmp_path / "trusted"
    trusted.write_text(f"# the team's keys\n\n{fingerprint(k2.with_suffix('.pub'))}  # bo\n")
    assert main(["verify", str(bundle), "--trusted-keys", str(trusted)]) == 1
    trusted.write_text(trusted.read_text() + k1.with_suffix(".pub").read_text())
    assert main(["verify", str(bundle), "--trusted-keys", str(trusted)]) == 0
    trusted.write_text(trusted.read_text() + "not a key\n")
    capsys.readouterr()
    assert main(["verify", str(bundle), "--trusted-keys", str(trusted)]) == 2
    assert "line 7" in capsys.readouterr().err
    trusted.write_bytes(b"#" * (2 << 20))
    assert main(["verify", str(bundle), "--trusted-keys", str(trusted)]) == 2


def test_an_unsigned_bundle_verifies_as_before_and_says_not_signed(bundle, capsys):
    assert main(["verify", str(bundle)]) == 0
    assert "not signed" in capsys.readouterr().out

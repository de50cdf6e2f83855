"""Hostile inputs to ``advaudit verify`` and ``advaudit sign`` (the third review): a file named like the pinned
fingerprint, a revoked key left in a comment of --trusted-keys, a removed signature, an envelope naming no public
key, a foreign or off-schema predicate or one that contradicts results.json, names listed twice, a device or FIFO
as the signing key, a concurrent publish while signing, invisible characters in the sign-off, the verify hint,
an encrypted OpenSSH key, and a bundle file hard-linked from outside."""
import base64
import json
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from audit.cli import main
from audit.core.errors import UsageError
from audit.evidence.attestation import signoff
from audit.evidence.manifest import MANIFEST, SUMS, write_manifest
from audit.evidence.signing import ENVELOPE, PAYLOAD_TYPE, keyid, pae
from audit.evidence.trust import pins

pytestmark = pytest.mark.slow


@pytest.fixture
def signed(demo_run, tmp_path, keys, capsys):
    """A copy of the demo's output signed with k1."""
    copy = tmp_path / "b"
    shutil.copytree(demo_run[1], copy)
    assert main(["sign", str(copy), "--key", str(keys[0])]) == 0
    capsys.readouterr()
    return copy


def fp(key_path) -> str:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return keyid(key.public_key())


def verify(capsys, *args) -> tuple[int, str]:
    code = main(["verify", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out + err


def recraft(bundle, key_path, change) -> None:
    """Rewrite the envelope: ``change(statement)`` then a signature by the key at ``key_path``."""
    env = json.loads((bundle / ENVELOPE).read_text())
    stmt = json.loads(base64.b64decode(env["payload"]))
    change(stmt)
    payload = json.dumps(stmt).encode()
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    sig = {"keyid": keyid(key.public_key()), "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode()}
    (bundle / ENVELOPE).write_text(json.dumps({"payloadType": PAYLOAD_TYPE,
                                               "payload": base64.b64encode(payload).decode(), "signatures": [sig]}))


def resign(bundle, key, capsys) -> None:
    (bundle / ENVELOPE).unlink()
    facts = {k: v for k, v in json.loads((bundle / MANIFEST).read_text()).items()
             if k not in ("manifest_version", "generator", "algorithm", "environment", "files", "signoff")}
    write_manifest(bundle, {}, facts)
    assert main(["sign", str(bundle), "--key", str(key)]) == 0
    capsys.readouterr()


def test_a_file_named_like_the_pinned_fingerprint_never_replaces_it(signed, keys, tmp_path, monkeypatch, capsys):
    k1, k2 = keys
    resign(signed, k2, capsys)  # the attacker re-signs, then ships a file named like the victim's fingerprint
    monkeypatch.chdir(tmp_path)
    for name in (fp(k1), f"sha256:{fp(k1).upper()}", f" {fp(k1)}\n"):
        (tmp_path / name).write_bytes(k2.with_suffix(".pub").read_bytes())
        assert verify(capsys, signed, "--key", name)[0] == 1
    assert pins(f"SHA256:{fp(k1).upper()}").fingerprints == {fp(k1)}


def test_a_commented_out_key_is_not_trusted(signed, keys, tmp_path, capsys):
    k1, k2 = keys
    pem = k1.with_suffix(".pub").read_text()
    trusted = tmp_path / "trusted"
    trusted.write_text(f"{fp(k2)}\n# REVOKED: {pem.replace(chr(10), '')}\n")
    assert verify(capsys, signed, "--trusted-keys", trusted)[0] == 1
    trusted.write_text(f"{fp(k2)}\n" + "".join(f"# {line}\n" for line in pem.splitlines()))
    assert verify(capsys, signed, "--trusted-keys", trusted)[0] == 1
    trusted.write_text(f"{fp(k2)}  # x {pem}")  # the BEGIN line inside a comment: the rest is no key
    assert verify(capsys, signed, "--trusted-keys", trusted)[0] == 2
    trusted.write_bytes(b"\xef\xbb\xbf" + pem.encode())  # a UTF-8 BOM, then the key: trusted
    assert verify(capsys, signed, "--trusted-keys", trusted)[0] == 0


def test_a_non_ed25519_pem_in_trusted_keys_is_refused_naming_its_line(signed, keys, tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric import rsa
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    trusted = tmp_path / "trusted"
    trusted.write_text(f"# team\n{fp(keys[0])}\n{rsa_pub}")
    code, out = verify(capsys, signed, "--trusted-keys", trusted)
    assert code == 2 and "line 3" in out and "Ed25519" in out and out.count("\n") == 1
    trusted.write_text(f"{fp(keys[0])}\n-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n")
    code, out = verify(capsys, signed, "--trusted-keys", trusted)
    assert code == 2 and "line 2" in out


def test_removing_the_signature_is_a_failure_not_a_downgrade(signed, demo_run, tmp_path, capsys):
    (signed / ENVELOPE).unlink()
    code, out = verify(capsys, signed)
    assert code == 1 and "the signature was removed" in out
    plain = tmp_path / "plain"
    shutil.copytree(demo_run[1], plain)
    code, out = verify(capsys, plain)
    assert code == 0 and "proves nothing about who wrote it" in out and "verified" not in out
    code, out = verify(capsys, plain, "--require-signature")
    assert code == 1 and "not signed" in out


def test_an_envelope_without_its_public_key_needs_a_pinned_public_key(signed, keys, capsys):
    k1, k2 = keys
    recraft(signed, k1, lambda s: s["predicate"]["signoff"].pop("public_key"))
    code, out = verify(capsys, signed)
    assert code == 1 and "names no public key" in out
    assert verify(capsys, signed, "--key", fp(k1))[0] == 1  # a fingerprint cannot check a signature
    assert verify(capsys, signed, "--key", k1.with_suffix(".pub"))[0] == 0

    def claim_the_victim(stmt):  # signed by k2, claiming k1's keyid in the sign-off
        stmt["predicate"]["signoff"].pop("public_key", None)
        stmt["predicate"]["signoff"]["key_fingerprint"] = fp(k1)
    recraft(signed, k2, claim_the_victim)
    env = json.loads((signed / ENVELOPE).read_text())
    env["signatures"][0]["keyid"] = fp(k1)
    (signed / ENVELOPE).write_text(json.dumps(env))
    code, out = verify(capsys, signed)
    assert code == 1 and fp(k1) not in out
    assert verify(capsys, signed, "--key", k1.with_suffix(".pub"))[0] == 1


@pytest.mark.parametrize("change, words", [
    (lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"), "predicateType"),
    (lambda s: s["predicate"].update(junk=1), "junk"),
    (lambda s: s["predicate"].update(verdict="go" if s["predicate"]["verdict"] != "go" else "no-go"), "verdict"),
    (lambda s: s["predicate"].update(candidate="another-model"), "candidate"),
    (lambda s: s["predicate"].update(created="2000-01-01T00:00:00+00:00"), "created"),
    (lambda s: s["predicate"]["checks"][0].update(status="skipped" if s["predicate"]["checks"][0]["status"] != "skipped"
                                                  else "pass"), "findings"),
    (lambda s: s["subject"].append(dict(s["subject"][0])), "named twice"),
])
def test_a_signed_predicate_must_be_ours_valid_and_agree_with_results(signed, keys, capsys, change, words):
    recraft(signed, keys[0], change)
    code, out = verify(capsys, signed, "--key", keys[0].with_suffix(".pub"))
    assert code == 1 and words in out


def test_a_name_listed_twice_in_sha256sums_is_a_problem(signed, capsys):
    (signed / ENVELOPE).unlink()
    write_manifest(signed, {})
    lines = (signed / SUMS).read_text().splitlines()
    (signed / SUMS).write_text("\n".join(lines + lines[:1] * 50) + "\n")
    code, out = verify(capsys, signed)
    assert code == 1 and "listed more than once" in out and out.count("listed more than once") == 1


@pytest.mark.parametrize("kind", ["device", "fifo", "dir", "empty"])
def test_a_signing_key_that_is_no_regular_file_is_refused_at_once(signed, tmp_path, capsys, kind):
    path = {"device": "/dev/zero", "dir": str(tmp_path), "empty": ""}.get(kind, str(tmp_path / "fifo"))
    if kind == "fifo":
        os.mkfifo(path)
    assert main(["sign", str(signed), "--key", path, "--force"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and {"device": "regular file", "fifo": "regular file", "dir": "directory",
                                     "empty": "empty"}[kind] in err


def test_sign_does_not_replace_an_output_published_while_it_signed(signed, keys, monkeypatch):
    import audit.evidence.output as output
    from audit.evidence.sign import sign_bundle
    real = output.signed_files

    def meanwhile(*args, **kwargs):  # another run publishes a new output between verification and the exchange
        record = real(*args, **kwargs)
        with open(signed / SUMS, "a") as fh:
            fh.write("\n")
        return record
    monkeypatch.setattr(output, "signed_files", meanwhile)
    newer = (signed / SUMS).read_bytes() + b"\n"
    with pytest.raises(UsageError, match="changed while it was being signed"):
        sign_bundle(signed, keys[1], force=True)
    assert (signed / SUMS).read_bytes() == newer and not list(signed.parent.glob(".b.*"))


@pytest.mark.parametrize("name", ["Ann\u202eevil", "zero\u200bwidth", "bom\ufeff", "iso\u2066late", "lone\ud800"])
def test_invisible_characters_in_the_signoff_are_refused_or_dropped(signed, keys, capsys, name):
    assert main(["sign", str(signed), "--key", str(keys[0]), "--force", "--reviewer", name]) == 2
    assert main(["sign", str(signed), "--key", str(keys[0]), "--force", "--role", name]) == 2
    capsys.readouterr()
    record = signoff(bytes(32), "ab" * 32, name, name)  # from a config's [reviewer]: dropped
    assert record["reviewer"] == record["role"] and record["reviewer"].isprintable()


def test_the_verify_hint_names_the_fingerprint(signed, keys, tmp_path, capsys):
    other = tmp_path / "elsewhere.pem"
    shutil.copyfile(keys[1], other)  # a key without a matching .pub beside it
    assert main(["sign", str(signed), "--key", str(other), "--force"]) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert f"--key {fp(keys[1])}" in hint and ".pub" not in hint
    shutil.copyfile(keys[0].with_suffix(".pub"), f"{other}.pub")  # a .pub that is another key's
    assert main(["sign", str(signed), "--key", str(other), "--force"]) == 0
    assert ".pub" not in capsys.readouterr().out.splitlines()[-1]
    assert main(["sign", str(signed), "--key", str(keys[0]), "--force"]) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert f"--key {fp(keys[0])}" in hint and f"--key {keys[0]}.pub" in hint


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_an_encrypted_openssh_key_says_it_needs_bcrypt(signed, tmp_path, capsys, monkeypatch):
    key = tmp_path / "sshenc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(key)], check=True)
    monkeypatch.setenv("ADVAUDIT_SIGN_PASSPHRASE", "pw")
    try:
        import bcrypt  # noqa: F401
        pytest.skip("bcrypt is installed: the key loads")
    except ImportError:
        pass
    assert main(["sign", str(signed), "--key", str(key), "--force"]) == 2
    err = capsys.readouterr().err
    assert "bcrypt" in err and "not a PEM private key" not in err


def test_a_public_key_that_is_empty_or_a_directory_is_a_clear_error(signed, tmp_path, capsys):
    for key, words in (("", "empty"), (str(tmp_path), "directory")):
        code, out = verify(capsys, signed, "--key", key)
        assert code == 2 and words in out


def test_a_file_hard_linked_from_outside_is_copied_not_linked(demo_run, tmp_path, keys, capsys):
    copy = tmp_path / "hl"
    shutil.copytree(demo_run[1], copy)
    outside = tmp_path / "outside.html"
    os.link(copy / "report.html", outside)
    assert main(["sign", str(copy), "--key", str(keys[0])]) == 0
    assert outside.stat().st_nlink == 1 and (copy / "report.html").stat().st_nlink == 1
    assert verify(capsys, copy, "--key", keys[0].with_suffix(".pub"))[0] == 0

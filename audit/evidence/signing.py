"""Optional signing of an evidence bundle: an in-toto Statement v1 in a DSSE envelope, signed with Ed25519.

The Statement's subjects are every file listed in SHA256SUMS (and SHA256SUMS itself) with its SHA-256; its
predicate (``PREDICATE_TYPE``, schema and content in audit/evidence/attestation.py) carries the verdict and its
basis, the checks that ran, the attack settings, the threat model, the policy and the sign-off (reviewer, role,
UTC time, key fingerprint). The signature covers the DSSE pre-authentication encoding PAE(payloadType, payload), so
neither the file list nor the verdict can be changed without breaking it. ``advaudit verify DIR --key PUB.pem``
checks it against a pinned key (audit/evidence/trust.py); any DSSE/in-toto tool can too.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from audit.core.errors import UsageError
from audit.evidence.attestation import PREDICATE_TYPE

try:
    from cryptography.exceptions import UnsupportedAlgorithm
except ImportError:  # pragma: no cover - signing then fails with the install hint
    class UnsupportedAlgorithm(Exception):  # type: ignore[no-redef]
        pass

ENVELOPE = "attestation.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise UsageError("signing needs the 'cryptography' package (pip install cryptography)") from None
    return serialization, ed25519


def keygen(path: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) and its public key next to it (``.pub``)."""
    serialization, ed25519 = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    pub = Path(f"{path}.pub")
    for p in (Path(path), pub):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p} already exists; not overwriting a key")
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private)
        fd = os.open(pub, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)  # never through a link
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as e:
        raise UsageError(f"cannot write key {path}: {e.strerror or e}") from None
    return Path(path), pub


PASSPHRASE_ENV = "ADVAUDIT_SIGN_PASSPHRASE"  # the passphrase of an encrypted signing key, if it is one
MAX_KEY_BYTES = 64 * 1024
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024


def _key_bytes(path: Path, what: str) -> bytes:
    """The bytes of a key file: a regular file of at most MAX_KEY_BYTES (never a device, FIFO or directory)."""
    from audit.core.files import read_bounded
    if not str(path).strip():
        raise UsageError(f"{what}: no path given")
    try:
        return read_bounded(Path(path), MAX_KEY_BYTES, what)
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a directory, not a key file") from None
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None


def _parse_private(data: bytes, path: Path, password: bytes | None):
    serialization, _ = _crypto()
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            return serialization.load_ssh_private_key(data, password=password)
        return serialization.load_pem_private_key(data, password=password)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a key that is not encrypted
        if password is None:
            raise UsageError(f"signing key {path} is encrypted: put its passphrase in the environment variable "
                             f"{PASSPHRASE_ENV}") from None
        raise UsageError(f"signing key {path} is not encrypted: unset {PASSPHRASE_ENV}") from None
    except (ValueError, UnsupportedAlgorithm) as e:
        if "bcrypt" in str(e).lower():
            raise UsageError(f"signing key {path} is an encrypted OpenSSH key, which needs the 'bcrypt' package "
                             f"(not installed); decrypt it or use a PKCS#8 key from `advaudit keygen KEY`") from None
        wrong = "passphrase" in str(e).lower() or "decrypt" in str(e).lower()
        if password is not None and wrong:
            raise UsageError(f"signing key {path}: the passphrase in {PASSPHRASE_ENV} does not decrypt it") from None
        raise UsageError(f"signing key {path} is not a PEM private key (make one with `advaudit keygen KEY`)") \
            from None


def load_private(path: Path):
    """The Ed25519 private key at ``path`` (PKCS#8 or OpenSSH PEM), checked before any work: an encrypted key needs
    its passphrase in the environment variable ADVAUDIT_SIGN_PASSPHRASE; a public key, an RSA/EC key, an empty or
    random file, a device, FIFO or directory are each refused with the reason."""
    _, ed25519 = _crypto()
    path = Path(path)
    data = _key_bytes(path, "signing key")
    if not data.strip():
        raise UsageError(f"signing key {path} is empty")
    if b"PUBLIC KEY" in data or data.lstrip().startswith(b"ssh-"):
        raise UsageError(f"signing key {path} is a public key; sign with the private key (KEY, not KEY.pub)")
    secret = os.environ.get(PASSPHRASE_ENV)
    key = _parse_private(data, path, secret.encode("utf-8", "surrogateescape") if secret else None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        kind = type(key).__name__.replace("PrivateKey", "").lstrip("_") or "another"
        raise UsageError(f"signing key {path} is not an Ed25519 key (it is {kind}); advaudit signs with Ed25519 "
                         f"(`advaudit keygen KEY`)")
    return key


_load_private = load_private


def load_public(path: Path):
    serialization, ed25519 = _crypto()
    data = _key_bytes(Path(path), "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise UsageError(f"{path} is not a PEM public key ({str(e)[:120]})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UsageError(f"public key {path} is not an Ed25519 key")
    return key


def keyid(public_key) -> str:
    """The key's fingerprint: SHA-256 of its raw 32 bytes (the DSSE keyid)."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()


def raw_public(public_key) -> bytes:
    serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def statement(subjects: dict[str, str], predicate: dict) -> dict:
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
            "predicateType": PREDICATE_TYPE, "predicate": predicate}


def sign(subjects: dict[str, str], predicate: dict, key) -> dict:
    """The DSSE envelope (a dict) over the Statement for ``subjects`` (name -> sha256); ``key``: the private key's
    path, or the key loaded by ``load_private``."""
    key = _load_private(Path(key)) if isinstance(key, (str, os.PathLike)) else key
    payload = json.dumps(statement(subjects, predicate), sort_keys=True, separators=(",", ":")).encode("utf-8")
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}]}


@dataclass(frozen=True)
class EnvelopeCheck:
    """Problems with an envelope, the fingerprints of the keys whose signature was checked and verifies (never a
    keyid the envelope merely claims), whether a pinned key verified it, and its predicate (None: unreadable)."""

    problems: list[str] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)
    pinned: bool = False
    predicate: dict | None = None


@dataclass(frozen=True)
class Pins:
    """Public keys (Ed25519 key objects) and key fingerprints the verifier trusts; ``source`` names them."""

    keys: tuple = ()
    fingerprints: frozenset[str] = frozenset()
    source: str = ""

    def trusts(self, fingerprint: str) -> bool:
        return fingerprint in self.fingerprints


def _named_key(stmt: dict):
    """The public key the attestation's sign-off names (raw Ed25519, base64), or None."""
    _, ed25519 = _crypto()
    signoff = stmt.get("predicate", {}).get("signoff") if isinstance(stmt.get("predicate"), dict) else None
    raw = signoff.get("public_key") if isinstance(signoff, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(raw, validate=True))
    except ValueError:
        raise ValueError("the sign-off's public_key is not a raw Ed25519 key") from None


def _verifies(key, sigs: list, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    for s in sigs:
        try:
            key.verify(base64.b64decode(s["sig"]), message)
            return True
        except (InvalidSignature, KeyError, ValueError, TypeError, AttributeError):
            continue
    return False


def check_signatures(stmt: dict, sigs: list, message: bytes, pinned: Pins | None, name: str) -> EnvelopeCheck:
    """Check ``sigs`` over ``message`` (the PAE) against the key the attestation names and the pinned keys. An
    envelope whose sign-off names no public key (advaudit always records it) verifies only with a pinned public
    key (PEM): a fingerprint alone cannot check a signature, and a keyid the envelope claims is never a signer."""
    problems: list[str] = []
    named = _named_key(stmt)
    signers: list[str] = []
    if named is not None:
        fp = keyid(named)
        if _verifies(named, sigs, message):
            signers.append(fp)
        else:
            problems.append(f"{name}: signature does not verify with the public key its sign-off names "
                            f"(the envelope was altered)")
        if stmt["predicate"]["signoff"].get("key_fingerprint") != fp:
            problems.append(f"{name}: the sign-off's key_fingerprint is not the fingerprint of its public key")
    by_pin = [keyid(k) for k in (pinned.keys if pinned is not None else ()) if _verifies(k, sigs, message)]
    if named is None:
        signers = by_pin
        if not by_pin:
            problems.append(f"{name}: its sign-off names no public key (advaudit always records it), so no "
                            f"signature was checked" + ("" if pinned is None else f" (none verifies with "
                                                                                   f"{pinned.source})"))
    ok = False
    if pinned is not None:
        ok = bool(by_pin) or any(pinned.trusts(fp) for fp in signers)
        if not ok and signers:
            problems.append(f"{name}: signature does not verify with {pinned.source} (signed by "
                            f"{', '.join(signers)})")
    pred = stmt.get("predicate")
    return EnvelopeCheck(problems, signers, ok and not problems, pred if isinstance(pred, dict) else None)


def _read_envelope(envelope_path: Path):
    from audit.core.files import read_bounded
    env = json.loads(read_bounded(Path(envelope_path), MAX_ENVELOPE_BYTES, ENVELOPE, follow=False))
    payload = base64.b64decode(env["payload"], validate=True)
    stmt = json.loads(payload)
    sigs = env["signatures"]
    names = [s["name"] for s in stmt["subject"]]
    signed = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    if not isinstance(sigs, list) or not all(isinstance(v, str) for v in signed.values()) or \
            not all(isinstance(n, str) for n in signed):
        raise TypeError("signatures must be a list and every subject digest a string")
    twice = sorted({n for n in names if names.count(n) > 1}) if len(names) != len(signed) else []
    return env, payload, stmt, sigs, signed, twice


def inspect_envelope(envelope_path: Path, actual: dict[str, str], pinned=None) -> EnvelopeCheck:
    """Check the envelope: its signatures (against the key its sign-off names and the ``pinned`` keys, a
    trust.Pins or a public key's path), its predicateType and predicate (the shipped schema), and its subjects
    against ``actual`` (name -> sha256 of the files)."""
    from audit.evidence.attestation import statement_problems
    if isinstance(pinned, (str, os.PathLike)):
        public = load_public(Path(pinned))
        pinned = Pins((public,), frozenset({keyid(public)}), str(pinned))
    try:
        env, payload, stmt, sigs, signed, twice = _read_envelope(envelope_path)
        sig = check_signatures(stmt, sigs, pae(str(env.get("payloadType", "")), payload), pinned, ENVELOPE)
    except (UsageError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        return EnvelopeCheck([f"{ENVELOPE}: malformed ({type(e).__name__}: {str(e)[:120]})"])
    problems = list(sig.problems)
    if stmt.get("_type") != STATEMENT_TYPE or env.get("payloadType") != PAYLOAD_TYPE:
        problems.append(f"{ENVELOPE}: not an in-toto Statement v1 envelope")
    problems += statement_problems(stmt, ENVELOPE)
    problems += [f"{name}: a subject named twice in the signed statement" for name in twice]
    for name, digest in sorted(signed.items()):
        if name not in actual:
            problems.append(f"{name}: signed but missing")
        elif actual[name] != digest:
            problems.append(f"{name}: changed since signing (SHA-256 differs from the signed statement)")
    for name in sorted(set(actual) - set(signed)):
        problems.append(f"{name}: present but not covered by the signature")
    return EnvelopeCheck(problems, sig.signers, sig.pinned and not problems, sig.predicate)


def verify_envelope(envelope_path: Path, actual: dict[str, str], public_key_path=None) -> list[str]:
    """Problems with the envelope: a bad signature (with the pinned key, when one is given, and with the key its
    sign-off names) or subjects that differ from the files."""
    return inspect_envelope(envelope_path, actual, public_key_path).problems

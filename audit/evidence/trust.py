"""Which signer ``advaudit verify`` trusts: the pinned keys of ``--key`` and ``--trusted-keys`` (as
signing.Pins, which ``signing.check_signatures`` checks an envelope's signatures against).

A signature that verifies proves only that *someone* signed: anyone can re-sign a tampered bundle with a key of
their own. So a bundle counts as verified only when a signature verifies with a key the verifier pinned. ``--key``
takes an Ed25519 public key (PEM) file or a key fingerprint (64 hex digits: SHA-256 of the raw public key, the
DSSE keyid that advaudit prints); ``--trusted-keys FILE`` takes a file of such fingerprints and PEM public keys
(one fingerprint per line, a PEM block over its lines, ``#`` comments, blank lines ignored; at most 1 MiB).
Without a pin, ``verify`` checks the signature against the public key the attestation names (so a broken envelope
still fails) and prints that key's fingerprint, but does not call the bundle verified.
"""
from __future__ import annotations

import re
from pathlib import Path

from audit.core.errors import UsageError
from audit.evidence.signing import Pins, _crypto, keyid, load_public

MAX_TRUSTED_BYTES = 1 << 20
FINGERPRINT = re.compile(r"(?:sha256:)?([0-9a-f]{64})", re.IGNORECASE)
PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


def fingerprint_of(public_key) -> str:
    return keyid(public_key)


def _fingerprint(text: str) -> str | None:
    m = FINGERPRINT.fullmatch(text.strip())
    return m.group(1).lower() if m else None


def _pem_keys(data: bytes, where: str) -> list:
    serialization, ed25519 = _crypto()
    keys = []
    for block in PEM_BLOCK.findall(data):
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, TypeError) as e:
            raise UsageError(f"{where}: a PEM block is not a public key ({str(e)[:120]})") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise UsageError(f"{where}: a PEM block is not an Ed25519 public key")
        keys.append(key)
    return keys


def read_trusted_keys(path: Path) -> Pins:
    """The pins of a trusted-keys file; UsageError for an unreadable, oversized or malformed one."""
    from audit.core.files import read_bounded
    where = f"--trusted-keys {path}"
    try:
        data = read_bounded(Path(path), MAX_TRUSTED_BYTES, "--trusted-keys")
    except FileNotFoundError:
        raise UsageError(f"{where}: not found") from None
    except OSError as e:
        raise UsageError(f"{where}: cannot be read ({e.strerror or e})") from None
    keys = _pem_keys(data, where)
    outside = PEM_BLOCK.sub(lambda m: b"\n" * m.group(0).count(b"\n"), data)  # line numbers kept
    try:
        text = outside.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{where}: not UTF-8 text (byte {e.start})") from None
    fingerprints = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fp = _fingerprint(line)
        if fp is None:
            raise UsageError(f"{where}: line {n} is neither a key fingerprint (64 hex digits) nor a PEM public key")
        fingerprints.add(fp)
    fingerprints |= {fingerprint_of(k) for k in keys}
    if not fingerprints:
        raise UsageError(f"{where}: names no key")
    return Pins(tuple(keys), frozenset(fingerprints), str(path))


def pins(key: str | Path | None = None, trusted: Path | None = None) -> Pins | None:
    """The pins of ``--key`` (a PEM file, or a fingerprint when no such file exists) and ``--trusted-keys``;
    None when neither is given."""
    found: list[Pins] = []
    if key is not None:
        text = str(key)
        fp = _fingerprint(text)
        if fp is not None and not Path(text).exists():
            found.append(Pins((), frozenset({fp}), f"key {fp[:16]}…"))
        else:
            public = load_public(Path(text))
            found.append(Pins((public,), frozenset({fingerprint_of(public)}), text))
    if trusted is not None:
        found.append(read_trusted_keys(trusted))
    if not found:
        return None
    return Pins(tuple(k for p in found for k in p.keys), frozenset().union(*(p.fingerprints for p in found)),
                " and ".join(p.source for p in found))



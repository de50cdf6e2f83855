"""Which signer ``advaudit verify`` trusts: the pinned keys of ``--key`` and ``--trusted-keys`` (as
signing.Pins, which ``signing.check_signatures`` checks an envelope's signatures against).

A signature that verifies proves only that *someone* signed: anyone can re-sign a tampered bundle with a key of
their own. So a bundle counts as verified only when a signature verifies with a key the verifier pinned. ``--key``
takes a key fingerprint (64 hex digits, optionally ``sha256:``: SHA-256 of the raw public key, the DSSE keyid that
advaudit prints) or an Ed25519 public key (PEM) file. Text shaped like a fingerprint is always the fingerprint,
never a path: a file planted under that name in the working directory cannot replace the pin.
``--trusted-keys FILE`` takes a file of such fingerprints and PEM public keys, read line by line: ``#`` starts a
comment (a key commented out is not trusted), a fingerprint is one line, a PEM block's BEGIN, body and END lines
each start their own uncommented line, blank lines are ignored, a UTF-8 BOM is allowed; at most 1 MiB. Any other
line, or a PEM block that is not an Ed25519 public key, is refused naming its line (nothing is trusted then).
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
BEGIN, END = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"


def fingerprint_of(public_key) -> str:
    return keyid(public_key)


def _fingerprint(text: str) -> str | None:
    m = FINGERPRINT.fullmatch("".join(text.split()))
    return m.group(1).lower() if m else None


def _pem_key(lines: list[str], where: str, n: int):
    """The Ed25519 public key of the PEM block ``lines`` (BEGIN to END) that starts on line ``n``."""
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key("\n".join(lines).encode("ascii", "replace") + b"\n")
    except (ValueError, TypeError) as e:
        raise UsageError(f"{where}: the PEM block of line {n} is not a public key ({str(e)[:120]})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UsageError(f"{where}: the PEM block of line {n} is not an Ed25519 public key")
    return key


def _parse_trusted(text: str, where: str) -> tuple[list, set[str]]:
    """(PEM keys, fingerprints) of a trusted-keys file's text, line by line, comments dropped first."""
    keys: list = []
    fingerprints: set[str] = set()
    block: list[str] | None = None
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if block is not None:
            if not line:
                raise UsageError(f"{where}: the PEM block of line {start} is broken by line {n} (blank or comment)")
            block.append(line)
            if line == END:
                keys.append(_pem_key(block, where, start))
                block = None
            elif line.startswith("-----"):
                raise UsageError(f"{where}: line {n}: the PEM block of line {start} does not end with {END}")
            continue
        if not line:
            continue
        if line == BEGIN:
            block, start = [line], n
        elif line.startswith("-----BEGIN"):
            raise UsageError(f"{where}: line {n} begins a PEM block that is not a public key ({line[:60]})")
        elif (fp := _fingerprint(line)) is not None:
            fingerprints.add(fp)
        else:
            raise UsageError(f"{where}: line {n} is neither a key fingerprint (64 hex digits) nor a PEM public key")
    if block is not None:
        raise UsageError(f"{where}: the PEM block of line {start} has no {END} line")
    return keys, fingerprints


def read_trusted_keys(path: Path) -> Pins:
    """The pins of a trusted-keys file; UsageError for an unreadable, oversized or malformed one."""
    from audit.core.files import read_bounded
    where = f"--trusted-keys {path}"
    try:
        data = read_bounded(Path(path), MAX_TRUSTED_BYTES, "--trusted-keys")
    except FileNotFoundError:
        raise UsageError(f"{where}: not found") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory, not a file") from None
    except OSError as e:
        raise UsageError(f"{where}: cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{where}: not UTF-8 text (byte {e.start})") from None
    keys, fingerprints = _parse_trusted(text.removeprefix("\ufeff"), where)
    fingerprints |= {fingerprint_of(k) for k in keys}
    if not fingerprints:
        raise UsageError(f"{where}: names no key")
    return Pins(tuple(keys), frozenset(fingerprints), str(path))


def _key_pin(text: str) -> Pins:
    fp = _fingerprint(text)
    if fp is not None:  # always the fingerprint: never a file that happens to bear its name
        return Pins((), frozenset({fp}), f"key {fp[:16]}…")
    if not text.strip():
        raise UsageError("--key: empty; give the signer's fingerprint (64 hex digits) or its public key file")
    if Path(text).is_dir():
        raise UsageError(f"--key {text}: is a directory; give the signer's fingerprint or its public key file")
    public = load_public(Path(text))
    return Pins((public,), frozenset({fingerprint_of(public)}), text)


def pins(key: str | Path | None = None, trusted: Path | None = None) -> Pins | None:
    """The pins of ``--key`` (a fingerprint when shaped like one, else a PEM file) and ``--trusted-keys``;
    None when neither is given."""
    found: list[Pins] = []
    if key is not None:
        found.append(_key_pin(str(key)))
    if trusted is not None:
        found.append(read_trusted_keys(trusted))
    if not found:
        return None
    return Pins(tuple(k for p in found for k in p.keys), frozenset().union(*(p.fingerprints for p in found)),
                " and ".join(p.source for p in found))

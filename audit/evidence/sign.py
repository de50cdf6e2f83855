"""``advaudit sign DIR --key KEY``: sign an existing output directory after the run.

The directory is verified first (a tampered, partial or foreign one is refused: ``Unverified`` with the problems,
or UsageError when it is no advaudit output at all); its results.json gives the predicate. The new directory is
assembled in a hidden sibling (the listed files hard-linked, or copied where links cannot be made, and each
checked against the SHA-256 it was verified with), then manifest.json (with the sign-off), SHA256SUMS and
attestation.dsse.json are written and the directory is swapped in atomically (audit/evidence/outdir.py): a reader
sees the unsigned bundle or the signed one, never a mix. A bundle that is already signed is re-signed only with
``force`` (the old signature is replaced, not kept beside the new one).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from audit.core.errors import UsageError
from audit.core.hashing import sha256_file
from audit.evidence.attestation import signoff_text
from audit.evidence.manifest import MANIFEST, SUMS, verify_bundle
from audit.evidence.outdir import begin_write, inside, publish
from audit.evidence.signing import ENVELOPE, load_private

MANIFEST_KEYS = ("manifest_version", "generator", "algorithm", "environment", "files", "signoff")


class Unverified(Exception):
    """The directory does not verify: it is not signed. ``problems``: what verify found."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class Signed:
    directory: Path
    signoff: dict[str, str]
    replaced: list[str]  # the fingerprints of the signature it replaced (empty: it was not signed)


def _manifest_facts(directory: Path) -> tuple[dict[str, str], dict]:
    """The environment and the other facts of the verified manifest.json, kept in the re-written one."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise UsageError(f"{directory / MANIFEST}: cannot be read ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{directory / MANIFEST}: not an advaudit manifest")
    env = data.get("environment")
    facts = {k: v for k, v in data.items() if k not in MANIFEST_KEYS}
    return (env if isinstance(env, dict) else {}), facts


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (the bundle's own file) to ``dst``; copy a file that is linked from elsewhere already
    (st_nlink > 1: whoever holds the other name could change the signed bytes later) or that cannot be linked."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if os.lstat(src).st_nlink > 1:
            raise OSError("linked from outside the bundle")
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copyfile(src, dst, follow_symlinks=False)


def _state(directory: Path) -> tuple[str | None, ...]:
    """SHA-256 of the bundle's SHA256SUMS, manifest.json and envelope (None: absent), to see whether another run
    published a new output while this one was signing."""
    out: list[str | None] = []
    for name in (SUMS, MANIFEST, ENVELOPE):
        try:
            out.append(sha256_file(directory / name) if (directory / name).is_file() else None)
        except OSError:
            out.append(None)
    return tuple(out)


def _assemble(directory: Path, tmp: Path, digests: dict[str, str]) -> None:
    """Put the listed files (not the manifest files) into the partial sibling ``tmp``, each as verified."""
    for name, digest in sorted(digests.items()):
        if name in (MANIFEST, SUMS, ENVELOPE):
            continue
        dst = inside(tmp, name)
        _link_or_copy(inside(directory, name), dst)
        if sha256_file(dst) != digest:
            raise Unverified([f"{name}: changed while it was being signed"])


def sign_bundle(directory: Path, key_path: Path, reviewer: str = "", role: str = "",
                force: bool = False) -> Signed:
    """Sign the verified output ``directory`` with the Ed25519 private key at ``key_path``; see the module."""
    from audit.engine.results_io import read_results
    from audit.evidence.output import signed_files
    reviewer, role = signoff_text("--reviewer", reviewer), signoff_text("--role", role)
    directory = Path(os.path.abspath(directory))
    load_private(key_path)  # a bad key fails before anything is read or written
    before = _state(directory)
    found = verify_bundle(directory)
    if found.problems:
        raise Unverified(found.problems)
    if found.signed and not force:
        raise UsageError(f"{directory} is already signed (by key {', '.join(found.signers) or 'unknown'}); "
                         f"give --force to replace that signature")
    if "results.json" not in found.digests:
        raise UsageError(f"{directory} lists no results.json: nothing to attest")
    result = read_results(directory / "results.json")
    environment, facts = _manifest_facts(directory)
    _, tmp = begin_write(directory, "cannot sign")  # its folder writable: UsageError, not a traceback
    try:
        _assemble(directory, tmp, found.digests)
        record = signed_files(tmp, result, key_path, environment, facts, (reviewer, role))
        # compare-and-swap: a run that published a newer output since it was verified is not replaced. What is
        # left is the moment between this check and the exchange below: a publish landing exactly there is lost
        # (no portable directory exchange compares first).
        if _state(directory) != before:
            raise UsageError(f"{directory} changed while it was being signed (another run wrote it?): not signed; "
                             f"run sign again")
        publish(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Signed(directory, record, list(found.signers) if found.signed else [])


def _matching_pub(key_path: Path, fingerprint: str) -> Path | None:
    """``KEY.pub`` when it exists and is the public key of the key that signed."""
    from audit.evidence.signing import keyid, load_public
    pub = Path(f"{key_path}.pub")
    try:
        return pub if pub.is_file() and keyid(load_public(pub)) == fingerprint else None
    except UsageError:
        return None


def signed_lines(done: Signed, key_path: Path) -> list[str]:
    """What ``advaudit sign`` reports (plain text: the caller escapes it for its terminal)."""
    so = done.signoff
    who = (f" for {so['reviewer']}" + (f" ({so['role']})" if so["role"] else "")) if so["reviewer"] else ""
    again = f" (replacing the signature of {', '.join(done.replaced)})" if done.replaced else ""
    pub = _matching_pub(key_path, so["key_fingerprint"])
    return [f"signed {done.directory}{who} at {so['signed_at']} with key {so['key_fingerprint']}{again}",
            f"check it with: advaudit verify {done.directory} --key {so['key_fingerprint']}"
            + (f" (or --key {pub})" if pub is not None else "")]


def verify_report(directory: Path, pinned=None, require_signature: bool = False) -> tuple[list[str], str]:
    """What ``advaudit verify`` reports and its outcome: "ok" (unchanged, and signed by a pinned key when
    signed), "failed" (a problem, or unsigned with ``require_signature``) or "unpinned" (unchanged and signed, but
    by a key nobody pinned: not verified)."""
    found = verify_bundle(directory, pinned)
    if found.problems:
        return ([f"FAILED {p}" for p in found.problems]
                + [f"bundle verification failed: {len(found.problems)} problem(s)"]), "failed"
    signers = ", ".join(found.signers)
    if not found.signed:
        if require_signature:
            return ["FAILED not signed, and --require-signature was given: hashes consistent, but nothing says who "
                    "wrote them"], "failed"
        return ["hashes consistent; not signed: this proves nothing about who wrote it (anyone can regenerate "
                "SHA256SUMS; use --require-signature to insist on a signature)"], "ok"
    if found.pinned:
        return [f"bundle verified: every listed file is unchanged and the signature verifies with the pinned key "
                f"{signers}"], "ok"
    return [f"NOT VERIFIED: every listed file is unchanged and the bundle is signed by key {signers}, "
            f"but that key is not pinned, and anyone can re-sign a bundle. Pin the signer: --key PUB.pem (or its "
            f"fingerprint) or --trusted-keys FILE"], "unpinned"

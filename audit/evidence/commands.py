"""The evidence commands of the CLI: ``verify``, ``sign`` and ``keygen`` (their arguments and what they report).

``run_command`` returns the lines for stdout and stderr (plain text: audit/cli.py escapes them for the terminal and
prints them) and an outcome the CLI maps to its exit code: "ok" (0), "failed" (1: tampered, a signature that does
not verify with the pinned key, unsigned under ``--require-signature``, or ``sign`` refusing a bundle that does
not verify) and "unpinned" (5: ``verify`` of a bundle whose files are unchanged and signed, but by a key nobody
pinned: not verified).
"""
from __future__ import annotations

import argparse
from pathlib import Path

NAMES = ("verify", "sign", "keygen")


def add_evidence_commands(sub) -> None:
    """Add the verify, sign and keygen sub-commands to ``sub`` (argparse sub-parsers)."""
    v = sub.add_parser("verify", help="check an output directory against its SHA256SUMS and its signature",
                       description="Check that every file of an output directory (the evidence bundle) matches its "
                       "SHA256SUMS and, when signed, that the signature verifies with a pinned key.")
    v.add_argument("bundle", type=Path, help="the output directory (the evidence bundle) to check")
    v.add_argument("--key", default=None, help="pin the signer: its Ed25519 public key (PEM file) or the key's "
                   "fingerprint (64 hex digits); a signed bundle verifies only with a pinned key (default: none)")
    v.add_argument("--trusted-keys", type=Path, default=None, metavar="FILE",
                   help="pin signers from a file of key fingerprints and PEM public keys ('#' comments; default: "
                   "none)")
    v.add_argument("--require-signature", action="store_true",
                   help="exit 1 when the bundle is not signed (without it, an unsigned bundle whose hashes are "
                   "consistent exits 0, which proves nothing about who wrote it)")
    s = sub.add_parser("sign", help="sign an existing output directory (verified first) with an Ed25519 key",
                       description="Sign an existing output directory after the run: it is verified first, then "
                       "attestation.dsse.json (an in-toto statement in a DSSE envelope) is written into it.")
    s.add_argument("bundle", type=Path, help="the output directory (the evidence bundle) to sign")
    s.add_argument("--key", required=True, help="the Ed25519 private key (from `advaudit keygen`; required)")
    s.add_argument("--reviewer", default="", help="the reviewer signing off, recorded in the attestation "
                   "(default: none)")
    s.add_argument("--role", default="", help="the reviewer's role (default: none)")
    s.add_argument("--force", action="store_true", help="replace an existing signature (else one is refused)")
    k = sub.add_parser("keygen", help="write a new Ed25519 signing key (PATH) and its public key (PATH.pub)",
                       description="Write a new Ed25519 key pair: PATH, the private key (mode 0600, keep it secret), "
                       "and PATH.pub, the public key to give the auditor.")
    k.add_argument("path", type=Path, help="where to write the private key (the public key goes to PATH.pub)")


def run_command(args: argparse.Namespace) -> tuple[list[str], list[str], str]:
    """(stdout lines, stderr lines, outcome) of one evidence command; UsageError for bad input."""
    if args.command == "verify":
        from audit.evidence.sign import verify_report
        from audit.evidence.trust import pins
        lines, outcome = verify_report(args.bundle, pins(args.key, args.trusted_keys), args.require_signature)
        return lines, [], outcome
    if args.command == "sign":
        from audit.core.errors import UsageError
        from audit.evidence.sign import Unverified, sign_bundle, signed_lines
        if not args.key.strip():
            raise UsageError("--key: empty; give the Ed25519 private key file (from `advaudit keygen KEY`)")
        try:
            done = sign_bundle(args.bundle, Path(args.key), args.reviewer, args.role, args.force)
        except Unverified as e:
            return [f"FAILED {p}" for p in e.problems], [f"{args.bundle} does not verify: not signing it"], "failed"
        return signed_lines(done, Path(args.key)), [], "ok"
    from audit.evidence.signing import keygen
    private, public = keygen(args.path)
    return [f"wrote {private} (private, keep it secret) and {public} (give this to the auditor)"], [], "ok"

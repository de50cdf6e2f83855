"""What a signature attests besides the file hashes: the predicate of the in-toto Statement.

``predicateType`` is ``PREDICATE_TYPE`` (versioned: a change that breaks a reader bumps the ``v1``); the predicate's
JSON Schema ships next to this module (``predicate.schema.json``) and ``validate`` checks a predicate against it.
The predicate carries the verdict and its basis (the policy's purpose, the evidence gaps, the gating findings that
failed or crashed), the candidate, every finding with its status, the attack preset and settings, the threat model,
the policy (name, version, SHA-256, purpose), the data-split hashes, the provenance block when the result has one,
and the sign-off: who signed (reviewer, role: hostile text, checked by ``signoff``), when (UTC) and with which key
(its fingerprint, SHA-256 of the raw Ed25519 public key, and the public key itself, so ``advaudit verify`` can say
which key signed before that key is pinned).
"""
from __future__ import annotations

import base64
import datetime
import functools
import json
import unicodedata
from importlib import resources
from typing import Any

from audit.core.errors import UsageError
from audit.core.result import AuditResult, Status
from audit.core.serde import to_data

PREDICATE_TYPE = "https://advaudit.dev/attestation/audit-result/v1"
SCHEMA_FILE = "predicate.schema.json"
SIGNOFF_LIMIT = 200  # characters of a reviewer's name or role


def signoff_text(key: str, value: str | None) -> str:
    """A reviewer's name or role as given on the command line or the API: at most ``SIGNOFF_LIMIT`` characters, no
    control character (no line break, escape or NUL: it is printed on terminals and filed as is); UsageError
    otherwise, before any work."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError(f"{key}: give text, not {type(value).__name__}")
    if len(value) > SIGNOFF_LIMIT:
        raise UsageError(f"{key}: at most {SIGNOFF_LIMIT} characters ({len(value)} given)")
    bad = next((c for c in value if _hidden(c) or c in "\u2028\u2029"), None)
    if bad is not None:
        raise UsageError(f"{key}: no control or invisible format characters (found {ascii(bad)})")
    return value.strip()


def _hidden(c: str) -> bool:
    """A control character, or one that reorders or hides text (bidi controls, zero-width, BOM: Unicode category
    Cf) or a lone surrogate (Cs)."""
    return ord(c) < 32 or 0x7f <= ord(c) < 0xa0 or unicodedata.category(c) in ("Cf", "Cs")


def _cleaned(value: object) -> str:
    """A config's reviewer text (any display string) made fit for a sign-off: control, format (bidi, zero-width)
    and surrogate characters dropped, bounded."""
    text = value if isinstance(value, str) else ""
    return "".join(c for c in text if not _hidden(c))[:SIGNOFF_LIMIT].strip()


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def signoff(public_raw: bytes, fingerprint: str, reviewer: str = "", role: str = "",
            signed_at: str | None = None) -> dict[str, str]:
    """The sign-off record (in the predicate and in manifest.json)."""
    return {"reviewer": _cleaned(reviewer), "role": _cleaned(role), "signed_at": signed_at or utc_now(),
            "key_fingerprint": fingerprint, "public_key": base64.b64encode(public_raw).decode("ascii"),
            "key_type": "ed25519"}


def _checks(result: AuditResult) -> list[dict[str, Any]]:
    return [{"finding": f.id, "check": f.check, "variant": f.variant, "status": f.status.value,
             "gating": bool(f.gating)} for f in result.findings]


def _basis(result: AuditResult) -> dict[str, Any]:
    gating = [f for f in result.findings if f.gating]
    return {"purpose": result.policy.purpose, "evidence_gaps": list(result.evidence_gaps),
            "failed_gating": [f.id for f in gating if f.status == Status.FAIL],
            "errored_gating": [f.id for f in gating if f.status == Status.ERROR],
            "policy_evidence": result.policy.evidence}


def _attacks(result: AuditResult) -> tuple[str, dict[str, Any]]:
    attacks = result.config.get("attacks") if isinstance(result.config, dict) else None
    attacks = dict(attacks) if isinstance(attacks, dict) else {}
    preset = attacks.get("preset")
    return (preset if isinstance(preset, str) else ""), attacks


def predicate(result: AuditResult, sign_off: dict[str, str] | None = None) -> dict[str, Any]:
    """The predicate attested for ``result`` (an INCOMPLETE verdict is attested as such, with what it lacks; the
    policy's purpose says whether the verdict was meant as a sign-off or a screening)."""
    preset, attacks = _attacks(result)
    p = result.policy
    out: dict[str, Any] = {
        "schema_version": result.schema_version, "tool": dict(result.tool), "created": result.created,
        "verdict": result.verdict.value, "verdict_basis": _basis(result), "candidate": result.candidate,
        "checks": _checks(result), "preset": preset, "attacks": to_data(attacks),
        "threat_model": to_data(result.threat_model) if result.threat_model is not None else None,
        "policy": {"name": p.name, "version": p.version, "sha256": p.sha256, "purpose": p.purpose},
        "evidence_gaps": list(result.evidence_gaps), "data_sha256": to_data(result.dataset.sha256)}
    provenance = getattr(result, "provenance", None)
    if provenance is not None:
        out["provenance"] = to_data(provenance)
    if sign_off is not None:
        out["signoff"] = dict(sign_off)
    return out


def schema() -> dict:
    return _schema_cached()


@functools.lru_cache(maxsize=1)
def _schema_cached() -> dict:
    text = resources.files("audit.evidence").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def problems(pred: object) -> list[str]:
    """Where ``pred`` departs from the shipped predicate schema (empty when it validates)."""
    import jsonschema
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(pred), key=lambda e: list(e.absolute_path))
    return [f"predicate/{'/'.join(str(x) for x in e.absolute_path)}: {' '.join(e.message[:200].split())}"
            for e in errors[:20]]


def statement_problems(stmt: dict, name: str) -> list[str]:
    """Problems with a signed Statement's predicate: another predicateType, or a departure from the schema."""
    if stmt.get("predicateType") != PREDICATE_TYPE:
        return [f"{name}: predicateType is {str(stmt.get('predicateType'))[:100]!r}, not {PREDICATE_TYPE}"]
    return [f"{name}: {line}" for line in problems(stmt.get("predicate"))]


def results_mismatches(pred: dict, results: object) -> list[str]:
    """Where the signed predicate disagrees with the bundle's results.json (parsed JSON): verdict, candidate,
    created, and each finding's status, by field name."""
    if not isinstance(results, dict):
        return ["results.json: not a JSON object; the signed predicate cannot be checked against it"]
    out = [f"results.json: {key} is {str(results.get(key))[:80]!r} but the signed predicate says "
           f"{str(pred.get(key))[:80]!r}" for key in ("verdict", "candidate", "created")
           if results.get(key) != pred.get(key)]
    findings = results.get("findings")
    got = [(f.get("id"), f.get("status")) for f in findings if isinstance(f, dict)] \
        if isinstance(findings, list) else None
    checks = pred.get("checks")
    want = [(c.get("finding"), c.get("status")) for c in checks if isinstance(c, dict)] \
        if isinstance(checks, list) else None
    if got != want:
        out.append("results.json: findings (ids and statuses) differ from the signed predicate's checks")
    return out


def validate(pred: object) -> None:
    """UsageError naming the first departure from the shipped schema."""
    found = problems(pred)
    if found:
        raise UsageError(found[0])

"""Everything about an output directory that must be known before any work: the formats, the signing key, the
PDF printer, and that the directory can be written; then rendering every format of one result and writing it
with the evidence bundle."""
from __future__ import annotations

from pathlib import Path

from audit.core.errors import UsageError
from audit.core.result import AuditResult
from audit.evidence.bundle import artifacts, bundle_facts
from audit.evidence.output import check_writable, write_outputs
from reports import FORMATS


def check_output(out: Path, formats: tuple[str, ...], sign_key: str = "") -> Path | None:
    """Fail before any work: unknown formats, a missing key, no Chromium for a PDF, an unwritable directory.
    Returns the signing key's path, if any."""
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"output.formats: {f!r} is not a format; valid: {', '.join(FORMATS)}")
    check_writable(out)
    key = Path(sign_key) if sign_key else None
    if key is not None:
        if not key.is_file():
            raise UsageError(f"output.sign_key: key file not found: {key}")
        from audit.evidence.signing import load_private
        load_private(key)  # parsed now: an encrypted, public, RSA or random key fails before any work
    if "pdf" in formats:
        from reports.browser import find_chromium
        if find_chromium() is None:
            raise UsageError("--format pdf needs Chromium: run `make browser` or set ADVAUDIT_CHROMIUM")
    return key


def render(result: AuditResult, formats: tuple[str, ...]) -> dict[str, str | bytes]:
    """File name -> rendered content of every requested format (each renderer sees only the result)."""
    return {FORMATS[f][0]: FORMATS[f][1](result) for f in formats}


def write(result: AuditResult, out: Path, formats: tuple[str, ...], ctx=None, config_path: Path | None = None,
          include_weights: bool = True, sign_key: Path | None = None) -> dict[str, Path]:
    """Render and write one result (with its evidence bundle when the run's context is given); returns
    format -> written path."""
    files = artifacts(ctx, config_path, include_weights) if ctx is not None else None
    facts = bundle_facts(result, ctx) if ctx is not None else None
    written = write_outputs(result, out, render(result, formats), files=files, facts=facts, sign_key=sign_key)
    return {f: written[FORMATS[f][0]] for f in formats}

"""The one output path of the CLI and ``audit.run``: everything about an output directory that must be known
before any work (the formats, the signing key, the PDF printer, that the directory can be written), then the run,
every format rendered once, the run record set once, the directory written and swapped in atomically with the
evidence bundle, and the run logged to MLflow once."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from audit.core.errors import UsageError
from audit.core.result import AuditResult
from audit.engine.record import Recorder
from audit.evidence.bundle import BundleInputs, artifacts, bundle_facts, bundle_inputs
from audit.evidence.output import check_writable, write_outputs
from reports import FORMATS

log = logging.getLogger(__name__)


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
    out: dict[str, str | bytes] = {}
    for f in formats:
        name, renderer = FORMATS[f]
        out[str(name)] = cast(Callable[[AuditResult], "str | bytes"], renderer)(result)
    return out


def write_rendered(result: AuditResult, out: Path, formats: tuple[str, ...], rendered: dict[str, str | bytes],
                   bundle: BundleInputs | None = None, sign_key: Path | None = None,
                   files: dict[str, bytes] | None = None) -> dict[str, Path]:
    """Write the ``rendered`` formats of one result (with its evidence bundle when ``bundle`` is given; ``files``:
    its files when already made); returns format -> written path."""
    if files is None and bundle is not None:
        files = artifacts(bundle)
    facts = bundle_facts(result, bundle) if bundle is not None else None
    written = write_outputs(result, out, rendered, files=files, facts=facts, sign_key=sign_key)
    return {f: written[FORMATS[f][0]] for f in formats}


def write(result: AuditResult, out: Path, formats: tuple[str, ...], bundle: BundleInputs | None = None,
          sign_key: Path | None = None) -> dict[str, Path]:
    """Render and write a finished result (``advaudit render``, ``Audit.write``); returns format -> path."""
    return write_rendered(result, out, formats, render(result, formats), bundle, sign_key)


@dataclass(frozen=True)
class Target:
    """Where one run's outputs go, checked before any work (``output_target``): the output directory (None: no
    files), its formats, the signing key, whether the bundle holds the weights, the user's config file, the
    MLflow (tracking URI, experiment) when the run is logged, and whether the bundle holds the model's source."""

    out: Path | None
    formats: tuple[str, ...] = ()
    sign_key: Path | None = None
    include_weights: bool = True
    config_path: Path | None = None
    tracking: tuple[str, str] | None = None
    bundle_source: bool = False


@dataclass(frozen=True)
class Outcome:
    """A finished run: the result (with its run record), format -> written path, the MLflow run id or the one
    line saying why logging failed, and how long rendering and writing took (after the record was set: a report
    cannot hold the time of its own rendering, and every format shows the same record)."""

    result: AuditResult
    written: dict[str, Path] = field(default_factory=dict)
    mlflow_run: str | None = None
    mlflow_problem: str = ""
    write_seconds: float = 0.0
    render_seconds: float = 0.0


def output_target(out: Path | None, output, config_path: Path | None = None,
                  tracking: tuple[str, str] | None = None) -> Target:
    """The target of a run writing ``out`` with the config's ``output`` settings, checked now (before any work):
    the CLI and ``audit.run`` both start here."""
    if out is None:
        return Target(None, tracking=tracking, config_path=config_path)
    key = check_output(out, tuple(output.formats), output.sign_key)
    return Target(out, tuple(output.formats), key, output.include_weights, config_path, tracking,
                  output.bundle_source)


def _provenance(ctx, target: Target, started: str, arrays, in_memory_data: bool):
    """The run's provenance block (audit/evidence/provenance.py); None, with a warning, if collecting it failed."""
    from audit.evidence.provenance import collect
    from audit.models.adapters import unwrap
    try:
        return collect(ctx.config, ctx.policy, ctx.user_model, unwrap(ctx.variants["baseline"].model),
                       target.config_path, started, tuple(arrays), in_memory_data)
    except Exception as e:  # noqa: BLE001 - provenance is recorded, never a reason to lose the audit
        log.warning("provenance: not recorded (%s: %s)", type(e).__name__, e)
        return None


def run_to(target: Target, config, data=None, model=None, recorder: Recorder | None = None,
           arrays=()) -> Outcome:
    """The one output path: run the audit, record its provenance (``arrays``: the digests of in-memory arrays),
    then ``publish`` it to ``target``."""
    from audit.engine import pipeline
    from audit.evidence.provenance import source_for_bundle
    recorder = recorder or Recorder()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result, ctx = pipeline.run_audit_with_context(config, data=data, model=model, recorder=recorder)
    with recorder.stage("provenance (hash the supplied files)"):
        prov = _provenance(ctx, target, started, arrays, data is not None)
    result = dataclasses.replace(result, provenance=prov)
    source = source_for_bundle(prov) if target.bundle_source and prov is not None else None
    from audit.engine.assemble import recorded_config
    bundle = None if target.out is None else bundle_inputs(recorded_config(ctx), ctx.policy, ctx.variants,
                                                           ctx.user_model, target.config_path, target.include_weights,
                                                           source)
    return publish(result, target, recorder, bundle)


def publish(result: AuditResult, target: Target, recorder: Recorder, bundle: BundleInputs | None = None) -> Outcome:
    """Set the run record once (the audit up to its result), render every format once from that one result (so
    ``advaudit render results.json`` rebuilds the same report), write and swap the directory in atomically, then
    log to MLflow once (a store that fails costs a warning line, not the output). The bundle's files are made
    once; the provenance block records each supplied file's bundle copy beside it."""
    files = artifacts(bundle) if bundle is not None else None
    if files is not None and bundle is not None and result.provenance is not None:
        from audit.evidence.provenance import state_sha256, with_bundle
        base = next((w.state for w in bundle.weights if w.variant == "baseline"), None)
        result = dataclasses.replace(result, provenance=with_bundle(
            result.provenance, files, state_sha256(base) if base is not None else ""))
    result = dataclasses.replace(result, run_record=recorder.record())
    t = time.perf_counter()
    rendered = render(result, target.formats)
    render_seconds = time.perf_counter() - t
    t = time.perf_counter()
    written: dict[str, Path] = {}
    if target.out is not None:
        written = write_rendered(result, target.out, target.formats, rendered, bundle, target.sign_key, files)
    seconds = time.perf_counter() - t
    run_id, problem = None, ""
    if target.tracking is not None:
        from audit.api.mlflow_log import log_run_or_warn
        run_id, problem = log_run_or_warn(result, target.out, *target.tracking)
    return Outcome(result, written, run_id, problem, seconds, render_seconds)


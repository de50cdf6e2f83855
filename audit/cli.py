"""Command line: thin. ``main(argv) -> int``; exit codes are the CI contract.

0 GO (every gate passed), 1 NO-GO (a gate failed), 2 usage/config/input error (one line, no traceback),
3 internal error (a gating check crashed, or advaudit itself failed), 4 INCOMPLETE (nothing failed, but the run is
short of the evidence the policy's [evidence] asks for: no GO can be claimed), 5 (verify only) the files are
unchanged and the bundle is signed, but by a key nobody pinned (--key, --trusted-keys): not verified.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path

from audit.api.cli_parser import EXIT_CODES, build_parser
from audit.api.options import _with_executor, _with_output_options
from audit.core.errors import UsageError
from audit.core.text import terminal
from audit.evidence.commands import NAMES as EVIDENCE_COMMANDS

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERNAL, EXIT_INCOMPLETE, EXIT_UNPINNED = 0, 1, 2, 3, 4, 5
ERROR_LIMIT = 2000  # characters of an error line: a message echoing a 100 MB value stays one readable line
NOISY = ("art", "cleanlab", "torch")  # their INFO and warnings only under -v (MLflow: audit/api/mlflow_log.py)
_QUIET = [False]
__all__ = ["EXIT_CODES", "build_parser", "main"]


def say(*parts) -> None:
    """Human output on stdout (none under -q; errors always go to stderr)."""
    if not _QUIET[0]:
        print(*parts)


def _summary(result, written: dict) -> str:
    return json.dumps({"verdict": result.verdict.label, "exit_code": result.verdict.exit_code,
                       "candidate": result.candidate, "purpose": result.policy.purpose,
                       "evidence_gaps": list(result.evidence_gaps),
                       "findings": [{"id": f.id, "status": f.status.value, "gating": f.gating, "summary": f.summary}
                                    for f in result.findings],
                       "outputs": {k: str(v) for k, v in written.items()}}, indent=1)


def _dry_run(config) -> int:
    from audit.engine.dryrun import dry_run
    from audit.engine.pipeline import build_context, prepare
    prepared = prepare(config)
    try:
        text, _seconds = dry_run(build_context(prepared, train=False))
    finally:
        prepared.executor.close()
    say("\n".join(terminal(line) for line in text.splitlines()))  # names in the plan are the user's text
    return EXIT_OK


def _run(config, out: Path, config_path: Path | None = None, start: float | None = None,
         profile: bool = False, json_summary: bool = False, dry_run: bool = False) -> int:
    from audit.api.outputs import output_target, run_to
    from audit.core.result import StageRecord
    from audit.engine.record import Recorder, profile_table
    config.validate("config")  # the demo's config and flag overrides too
    from audit.engine.evidence import check_policy
    check_policy(config.policy)  # its [evidence] names known checks: exit 2 before any work
    t = config.tracking
    target = output_target(out, config.output, config_path, (t.tracking_uri, t.experiment) if t.mlflow else None)
    if t.mlflow:
        from audit.api.tracking_check import check_tracking_uri
        check_tracking_uri(t.tracking_uri)
    if dry_run:
        return _dry_run(config)
    recorder = Recorder(start=start)
    recorder.add(StageRecord("load libraries and config", round(time.perf_counter() - recorder.start, 4)))
    outcome = run_to(target, config, recorder=recorder)
    result, key = outcome.result, target.sign_key
    written: dict[str, Path | str] = dict(outcome.written)
    if profile and result.run_record is not None:
        say(profile_table(result.run_record))
        say(f"then rendering the formats took {outcome.render_seconds:.2f} s and writing the outputs and the "
            f"evidence bundle {outcome.write_seconds:.2f} s (not in the record they hold)")
    if outcome.mlflow_run:
        written["mlflow_run"] = outcome.mlflow_run
    elif outcome.mlflow_problem:
        print(f"advaudit: warning: {terminal(outcome.mlflow_problem)}", file=sys.stderr)
    if json_summary:
        print(_summary(result, written))
        return result.verdict.exit_code
    from reports.view import verdict_line
    say(terminal(verdict_line(result)))
    say(f"report: {written['html']}")
    say(f"results: {written['json']}" + (f"  summary: {written['md']}" if "md" in written else "")
        + (f"  pdf: {written['pdf']}" if "pdf" in written else ""))
    if key is not None:
        say(f"signed: {out / 'attestation.dsse.json'}")
    if "mlflow_run" in written:
        from audit.config.tracking import store_uri
        from audit.core.net import redact
        say(f"mlflow run: {written['mlflow_run']} in {terminal(redact(store_uri(config.tracking.tracking_uri)))}")
    return result.verdict.exit_code


def _render(results: Path, out: Path, formats: tuple[str, ...] = (), paper: str | None = None) -> int:
    from audit.api.outputs import check_output, write
    from audit.engine.results_io import read_results, with_current_claims
    from reports.pdf import with_paper
    formats = tuple(dict.fromkeys(("html", "json", "md", "csv", *formats)))  # --format adds to these four
    check_output(out, formats)
    result = with_paper(with_current_claims(read_results(results)), paper)
    written = write(result, out, formats)
    say(f"report: {written['html']}")
    return result.verdict.exit_code


def _compare(base: Path, head: Path, policy: str, out: Path | None, fmt: str = "md") -> int:
    from audit.config.policy import load_policy
    from audit.engine.compare import compare, load_result
    from reports.compare_md import render_comparison
    rule = load_policy(policy).compare
    comparison = compare(load_result(base), load_result(head), rule)
    if fmt == "json":
        from audit.core.serde import to_data
        text = json.dumps(to_data(comparison), indent=1)
    else:
        text = render_comparison(comparison)
    if out is not None:
        import os
        import tempfile
        try:  # a fresh temporary name (O_EXCL: never a file or link planted there), then one rename
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or ".")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, out)
        except OSError as e:
            if "tmp" in locals() and os.path.exists(tmp):
                os.unlink(tmp)
            raise UsageError(f"cannot write {out}: {e.strerror or e}") from None
    print(text)
    return comparison.exit_code


def _evidence(args: argparse.Namespace) -> int:
    from audit.evidence.commands import run_command
    out, err, outcome = run_command(args)
    if out:
        say("\n".join(terminal(line) for line in out))
    for line in err:
        print(f"advaudit: error: {terminal(line)}", file=sys.stderr)
    return {"ok": EXIT_OK, "failed": EXIT_GATE, "unpinned": EXIT_UNPINNED}[outcome]


def _init(path: Path) -> int:
    from importlib import resources  # the package "audit", not "audit.config": that one imports torch (seconds)
    text = resources.files("audit").joinpath("config", "init_template.toml").read_text(encoding="utf-8")
    try:
        with open(path, "x", encoding="utf-8") as fh:  # never overwrite a user's config
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"{path} already exists; not overwriting it") from None
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    flag = "" if path == Path("advaudit.toml") else f" --config {path}"
    say(f"wrote {path}; edit it, then run: advaudit run{flag}")
    return EXIT_OK


def dispatch(args: argparse.Namespace, start: float | None = None) -> int:
    if args.command in EVIDENCE_COMMANDS:  # before the config and engine imports (torch): verify takes ~1 s
        return _evidence(args)
    if args.command == "init":  # likewise: writing the template takes no torch (well under 0.5 s)
        return _init(args.path)
    from audit import config as cfg
    from audit.engine import configure
    if args.command == "demo":
        config = _with_executor(cfg.replace(cfg.demo_config(), seed=args.seed, device=args.device), args)
        return _run(_with_output_options(config, args), args.out,
                    start=start, profile=args.profile, json_summary=args.json_summary, dry_run=args.dry_run)
    if args.command == "run":
        from audit.config.policy import BUILTIN
        policy = args.policy if args.policy in (None, *BUILTIN) else str(Path(args.policy).resolve())
        overrides = list(args.overrides) + [f"{k}={json.dumps(v)}" for k, v in
                                            (("seed", args.seed), ("policy", policy), ("device", args.device))
                                            if v is not None]
        path = args.config
        if path is None:
            path = Path("advaudit.toml")
            if not path.is_file():
                raise UsageError("no --config given and no ./advaudit.toml here; write one with `advaudit init`")
        config = _with_executor(_with_output_options(configure.load(path, overrides), args), args)
        return _run(config, args.out, config_path=path, start=start, profile=args.profile,
                    json_summary=args.json_summary, dry_run=args.dry_run)
    if args.command == "compare":
        return _compare(args.base, args.head, args.policy, args.out, args.compare_format)
    if args.command == "render":
        return _render(args.results, args.out, tuple(f for group in args.formats for f in group), args.paper)
    raise UsageError(f"unknown command {args.command!r}")


def _configure_output(args: argparse.Namespace) -> None:
    """The one place -q and -v take effect (given before or after the subcommand): stdout, logging, warnings."""
    _QUIET[0] = args.quiet
    if args.quiet or not args.verbose:  # libraries' warnings are noise around a one-line answer; -v shows them
        warnings.simplefilter("ignore")
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for noisy in NOISY:
            logging.getLogger(noisy).setLevel(logging.ERROR)
    from audit.core import progress  # no torch: `init` stays fast
    progress.configure(quiet=args.quiet, verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    debug = False
    with warnings.catch_warnings():
        try:
            if any("\x00" in a for a in (sys.argv[1:] if argv is None else argv)):
                raise UsageError("an argument contains a NUL byte")
            args = build_parser().parse_args(argv)
            debug = args.debug
            _configure_output(args)
            return dispatch(args, start)
        except UsageError as e:
            print(f"advaudit: error: {terminal(str(e)[:ERROR_LIMIT])}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("advaudit: interrupted; nothing was written", file=sys.stderr)
            return 130
        except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
            if debug:
                traceback.print_exc()
            print(f"advaudit: internal error: {type(e).__name__}: {terminal(e)} (run with --debug for the traceback)",
                  file=sys.stderr)
            return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())

"""Command line: thin. ``main(argv) -> int``; exit codes are the CI contract.

0 GO (every gate passed), 1 NO-GO (a gate failed), 2 usage/config/input error (one line, no traceback),
3 internal error (a gating check crashed, or advaudit itself failed).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from audit import __version__
from audit.errors import UsageError

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors are usage errors: exit 2, one line
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="advaudit", description="Adversarial-robustness and data audit for PyTorch classifiers.")
    p.add_argument("--version", action="version", version=f"advaudit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = sub.add_parser("demo", help="audit the built-in demo (small CNN on scikit-learn digits)")
    d.add_argument("--out", type=Path, default=Path("advaudit-demo"), help="output directory")
    d.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", help="audit with a config file")
    r.add_argument("--config", type=Path, required=True)
    r.add_argument("--out", type=Path, default=Path("advaudit-out"))
    r.add_argument("--seed", type=int, default=None, help="override the config's seed")
    r.add_argument("--policy", default=None, help="override the config's policy ('default' or a TOML path)")
    r.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"), help="override the config's device")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set attacks.eps=[0.05,0.1] (repeatable)")
    i = sub.add_parser("init", help="write a commented config template")
    i.add_argument("path", type=Path, nargs="?", default=Path("advaudit.toml"))
    v = sub.add_parser("verify", help="check an output directory against its SHA256SUMS")
    v.add_argument("bundle", type=Path)
    g = sub.add_parser("render", help="render report.html and summary.md again from a results.json")
    g.add_argument("results", type=Path)
    g.add_argument("--out", type=Path, required=True)
    return p


def _run(config, out: Path, base_dir: Path | None = None) -> int:
    from audit.output import check_writable, write_outputs
    from audit.pipeline import run_audit
    check_writable(out)
    result = run_audit(config, base_dir=base_dir)
    written = write_outputs(result, out)
    print(f"verdict: {result.verdict.value.upper()} for candidate {result.candidate!r}")
    print(f"report: {written['html']}")
    print(f"results: {written['json']}  summary: {written['md']}")
    return result.verdict.exit_code


def _render(results: Path, out: Path) -> int:
    from audit.output import write_outputs
    from audit.result import AuditResult
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"results file not found: {results}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read results file {results}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{results} is not an advaudit results.json (top level is not an object)")
    result = AuditResult.from_dict(data)
    written = write_outputs(result, out)
    print(f"report: {written['html']}")
    return result.verdict.exit_code


def _init(path: Path) -> int:
    from importlib import resources
    text = resources.files("audit").joinpath("init_template.toml").read_text(encoding="utf-8")
    try:
        with open(path, "x", encoding="utf-8") as fh:  # never overwrite a user's config
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"{path} already exists; not overwriting it") from None
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    print(f"wrote {path}; edit it, then run: advaudit run --config {path}")
    return EXIT_OK


def dispatch(args: argparse.Namespace) -> int:
    from audit import config as cfg
    if args.command == "demo":
        return _run(cfg.replace(cfg.demo_config(), seed=args.seed), args.out)
    if args.command == "run":
        overrides = list(args.overrides) + [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                                            for k, v in (("seed", args.seed), ("policy", args.policy),
                                                         ("device", args.device)) if v is not None]
        config = cfg.load_config(args.config, overrides)
        return _run(config, args.out, base_dir=args.config.resolve().parent)
    if args.command == "verify":
        from audit.evidence import verify
        problems = verify(args.bundle)
        for p in problems:
            print(f"FAILED {p}")
        print("bundle verified: every listed file is unchanged" if not problems else
              f"bundle verification failed: {len(problems)} problem(s)")
        return EXIT_OK if not problems else EXIT_GATE
    if args.command == "init":
        return _init(args.path)
    if args.command == "render":
        return _render(args.results, args.out)
    raise UsageError(f"unknown command {args.command!r}")


def main(argv: list[str] | None = None) -> int:
    debug = False
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        if not args.verbose:
            logging.getLogger("art").setLevel(logging.WARNING)
        return dispatch(args)
    except UsageError as e:
        print(f"advaudit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("advaudit: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            traceback.print_exc()
        print(f"advaudit: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())

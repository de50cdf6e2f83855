"""Command-line options shared by `demo` and `run` (formats, executor), and the CLI's quiet-aware output."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

FORMAT_NAMES = ("html", "json", "md", "csv", "pdf")
def _formats(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in FORMAT_NAMES]
    if bad:
        raise argparse.ArgumentTypeError(f"{bad[0]!r} is not a format; valid: {', '.join(FORMAT_NAMES)}")
    return names


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="formats", action="append", default=[], type=_formats, metavar="FORMATS",
                   help="more formats to write, comma-separated or repeated, from " + ", ".join(FORMAT_NAMES)
                   + ": added to the config's output.formats (default: html, json, md, csv; html and json are "
                   "always written, the evidence bundle needs them; pdf needs Chromium)")
    p.add_argument("--json", dest="json_summary", action="store_true",
                   help="print a JSON summary (verdict, findings, written files) on stdout instead of text")
    p.add_argument("--sign", type=Path, default=None, metavar="KEY",
                   help="sign the evidence bundle with this Ed25519 private key (PEM; see `advaudit keygen`; "
                   "default: the config's [output] sign_key, else unsigned)")
    p.add_argument("--no-weights", action="store_true", help="do not copy model weights into the bundle")
    p.add_argument("--bundle-source", action="store_true",
                   help="copy the model factory's source file into the bundle (source/)")
    p.add_argument("--paper", default=None, choices=("a4", "letter"),
                   help="the PDF's paper size (default: the config's [output] paper, a4)")


def _with_output_options(config, args):
    o = config.output
    chosen = [f for group in args.formats for f in group]  # added to the config's formats, never replacing them
    formats = tuple(dict.fromkeys(("html", "json", *o.formats, *chosen)))
    sign = str(args.sign.resolve()) if args.sign else o.sign_key
    return dataclasses.replace(config, output=dataclasses.replace(
        o, formats=formats, sign_key=sign, include_weights=o.include_weights and not args.no_weights,
        bundle_source=o.bundle_source or args.bundle_source, paper=args.paper or o.paper))


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default=None, choices=("local", "ray"),
                   help="where the independent units run (default: the config's [execution] executor, local)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="Ray cluster: 'auto', 'host:6379' or 'ray://host:10001' (default: a local cluster)")


def _with_executor(config, args):
    e = config.execution
    if args.executor is None and args.ray_address is None:
        return config
    executor = args.executor or ("ray" if args.ray_address is not None else e.executor)
    address = args.ray_address if args.ray_address is not None else e.address
    changed = dataclasses.replace(e, executor=executor, address=address)
    changed.validate("execution")
    return dataclasses.replace(config, execution=changed)

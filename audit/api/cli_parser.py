"""The CLI's parser: every subcommand with a description, every option with its help and default, the exit codes
as each command's epilog, and the global options (-q, -v, --debug) taken before or after the subcommand."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from audit.api.options import _executor_options, _formats, _output_options
from audit.core.errors import UsageError
from audit.core.version import __version__
from audit.evidence.commands import add_evidence_commands

EXIT_CODES = """exit codes:
  0  GO: every gating check passed
  1  NO-GO: a gating finding failed (compare: a regression; verify: tampered, a signature that does not
     verify with the pinned key or was removed, or unsigned with --require-signature; sign: the bundle
     does not verify)
  2  usage, config or input error (one line on stderr)
  3  internal error (a gating check crashed, or advaudit itself failed; --debug shows the traceback)
  4  INCOMPLETE: nothing failed, but the run lacks evidence its policy's [evidence] requires (a check,
     the attack strength, test points): no GO can be claimed
  5  verify: files unchanged and signed, but the signer's key is not pinned (give --key or
     --trusted-keys): not verified"""
WIDTH = 100  # the descriptions' line width (the help formatter keeps descriptions and epilogs as written)
GLOBAL = (("-v", "--verbose", "log progress details and the libraries' warnings"),
          ("-q", "--quiet", "print nothing but errors (and --json output)"),
          ("--debug", None, "show tracebacks of internal errors"))
DEMO = ("Audit the built-in demo: train a small CNN on scikit-learn's 8x8 digits (nothing is downloaded), "
        "adversarially train the same architecture, and audit both under the shipped screening policy.")
RUN = ("Audit the model and data a config file describes (write one with `advaudit init`) and write the report, "
       "results.json and the evidence bundle to --out. The exit code is the verdict.")
INIT = ("Write a commented config template with every section and its defaults (never overwrites a file); edit "
        "it, then `advaudit run`.")
COMPARE = ("Compare two results on the same test data (paired McNemar test per variant) and print the comparison; "
           "exit 1 when the head regresses under the policy's [compare] rule.")
RENDER = ("Render the report and the other formats again from a results.json (e.g. after an advaudit upgrade, or to "
          "add a PDF), into --out.")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors are usage errors: exit 2, one line
        raise UsageError(message)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (the exit-code table, one code a line); an option's default appended to
    its help where the help does not say it already (a flag is off unless given)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.nargs == 0 or action.default in (None, "", [], argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs != "?":
            return text  # a required positional has no default
        return text + " (default: %(default)s)"


def _global_options(p: argparse.ArgumentParser, default) -> None:
    for short, long, text in GLOBAL:
        names = (short, long) if long else (short,)
        p.add_argument(*names, action="store_true", default=default, help=text)


def _command(sub, name: str, text: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=text, description=description)


def _demo_and_run(sub) -> None:
    d = _command(sub, "demo", "audit the built-in demo (small CNN on scikit-learn digits)", DEMO)
    d.add_argument("--out", type=Path, default=Path("advaudit-demo"),
                   help="the output directory: report, results.json, evidence bundle")
    d.add_argument("--seed", type=int, default=0, help="the seed of data splits, training and attacks")
    d.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to run (auto: a GPU if any)")
    _executor_options(d)
    d.add_argument("--profile", action="store_true", help="print where the time went (the run record) as a table")
    d.add_argument("--dry-run", action="store_true", help="print the plan and a time estimate; train and write nothing")
    _output_options(d)
    r = _command(sub, "run", "audit with a config file", RUN)
    r.add_argument("--config", type=Path, default=None, help="the config (default: ./advaudit.toml)")
    r.add_argument("--out", type=Path, default=Path("advaudit-out"),
                   help="the output directory: report, results.json, evidence bundle")
    r.add_argument("--seed", type=int, default=None, help="override the config's seed (default: the config's)")
    r.add_argument("--profile", action="store_true", help="print where the time went (the run record) as a table")
    r.add_argument("--dry-run", action="store_true", help="print the plan and a time estimate; train and write nothing")
    r.add_argument("--policy", default=None, help="override the config's policy: 'default', 'screening' or a TOML "
                   "path (default: the config's policy)")
    r.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                   help="override the config's device (default: the config's)")
    _executor_options(r)
    _output_options(r)
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set attacks.eps=[0.05,0.1] (repeatable; default: none)")


def _other_commands(sub) -> None:
    i = _command(sub, "init", "write a commented config template", INIT)
    i.add_argument("path", type=Path, nargs="?", default=Path("advaudit.toml"), help="where to write the template")
    add_evidence_commands(sub)  # verify, sign, keygen
    c = _command(sub, "compare", "compare two results on the same test data (exit 1 on a regression)", COMPARE)
    c.add_argument("base", type=Path, help="results.json or output directory of the base (e.g. main)")
    c.add_argument("head", type=Path, help="results.json or output directory of the head (e.g. the PR)")
    c.add_argument("--policy", default="default", help="policy whose [compare] rule applies ('default' or a path)")
    c.add_argument("--out", type=Path, default=None,
                   help="also write the comparison to this file (default: stdout only)")
    c.add_argument("--format", dest="compare_format", choices=("md", "json"), default="md",
                   help="Markdown (for a PR comment) or JSON (for scripts)")
    g = _command(sub, "render", "render report.html and the other formats again from a results.json", RENDER)
    g.add_argument("results", type=Path, help="the results.json of a run")
    g.add_argument("--out", type=Path, required=True, help="the output directory to write (required)")
    g.add_argument("--format", dest="formats", action="append", default=[], type=_formats, metavar="FORMATS",
                   help="more formats to write, comma-separated or repeated (e.g. pdf, which needs Chromium); "
                   "html, json, md and csv are always written (default: those four)")
    g.add_argument("--paper", default=None, choices=("a4", "letter"),
                   help="the PDF's paper size (default: the run's [output] paper, a4)")


def build_parser() -> argparse.ArgumentParser:
    """The ``advaudit`` parser. -q, -v and --debug work before or after the subcommand (after it, they default to
    SUPPRESS so the value given before it stands)."""
    p = _Parser(prog="advaudit", description="Adversarial-robustness and data audit for PyTorch classifiers.",
                epilog=EXIT_CODES, formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"advaudit {__version__}")
    _global_options(p, False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _demo_and_run(sub)
    _other_commands(sub)
    for command in sub.choices.values():
        command.formatter_class, command.epilog = HelpFormatter, EXIT_CODES
        command.description = textwrap.fill(command.description or "", WIDTH)  # raw text: wrapped here
        _global_options(command, argparse.SUPPRESS)
    return p


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """name -> parser of every subcommand of ``parser`` (for the help tests and docs)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}

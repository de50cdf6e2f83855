"""Progress lines of `advaudit demo` on a non-terminal (stderr to a file, as in CI or `make demo`), and `-q`.

Runs ``python -m audit demo --out <tmp>`` with stderr to a file, timestamps each line as it lands (the file is
polled), then prints: the number of progress lines and of top-level stages of the run record that have a start
and an end line (each line carries the elapsed time), the ETA printed at the halfway line (the first line after
half the true wall time) beside the true time left, and their ratio; then runs ``python -m audit -q demo
--dry-run`` (the same progress code: the prepare stage, the run's first, goes through the same Recorder stage and
progress writer; a dry run trains nothing, so this takes seconds, not minutes) and checks its stderr is empty.

Usage: python bench/progress_eta.py [--device cpu] [--shim] [--log demo-stderr.log]
``--shim``: run the CLI through a wrapper that calls ``audit.core.progress.configure(quiet=..., verbose=...)``
first, for a checkout whose audit/cli.py does not call it yet.
Targets (issue 29): a start and an end line per top-level stage, each with the elapsed time; the ETA at the
halfway line within 2x of the true time left; `-q`: empty stderr.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LINE = re.compile(r"^advaudit: \[\s*(?P<t>[\d.]+) s\] (?P<what>.*?)(?:  \(eta (?P<eta>[\d.]+) (?P<u>s|min|h)\))?$")
UNIT = {"s": 1.0, "min": 60.0, "h": 3600.0}
SHIM = ("import sys; from audit import cli; from audit.core import progress; d = cli.dispatch\n"
        "def dispatch(args, start=None):\n"
        "    progress.configure(quiet=args.quiet, verbose=args.verbose)\n"
        "    return d(args, start)\n"
        "cli.dispatch = dispatch; sys.exit(cli.main(sys.argv[1:]))")


def command(shim: bool) -> list[str]:
    return [sys.executable, "-c", SHIM] if shim else [sys.executable, "-m", "audit"]


def run_logged(cmd: list[str], log: Path) -> tuple[float, float, list[tuple[float, str]], int]:
    """Run ``cmd`` with stderr to ``log``; (start, end, [(arrival, line)], exit code)."""
    arrivals: list[tuple[float, str]] = []
    done = threading.Event()

    def poll():
        seen = 0
        while True:
            finished = done.is_set()
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
            now = time.perf_counter()
            complete = lines if finished else lines[:-1]  # the last may be half written
            arrivals.extend((now, line) for line in complete[seen:])
            seen = max(seen, len(complete))
            if finished:
                return
            time.sleep(0.2)
    with open(log, "w", encoding="utf-8") as err:
        thread = threading.Thread(target=poll, daemon=True)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        thread.start()
        code = proc.wait()
        end = time.perf_counter()
    done.set()
    thread.join()
    return start, end, arrivals, code


def report(start: float, end: float, arrivals: list[tuple[float, str]], record: dict) -> float:
    parsed = [(at, m) for at, line in arrivals if (m := LINE.match(line))]
    wall = end - start
    print(f"demo: {wall:.1f} s wall, {len(arrivals)} stderr lines, {len(parsed)} progress lines")
    top = [s["name"] for s in record["stages"] if not s["parent"]]
    said = {m["what"] for _, m in parsed}
    ended = [n for n in top if any(w.startswith(("done  " + n + " in", "failed " + n)) for w in said)]
    started = [n for n in top if "start " + n in said]
    print(f"top-level stages in the run record: {len(top)}; with an end line: {len(ended)}; with a start line: "
          f"{len(started)} (stages measured before the run started have none)")
    half = next(((at, m) for at, m in parsed if at - start >= wall / 2 and m["eta"]), None)
    if half is None:
        print("no line with an ETA after half the wall time")
        return float("nan")
    at, m = half
    eta, truth = float(m["eta"]) * UNIT[m["u"]], end - at
    print(f"halfway line ({at - start:.1f} s into {wall:.1f} s): {m.group(0)}")
    print(f"  ETA {eta:.1f} s vs true time left {truth:.1f} s: ratio {eta / truth:.2f}")
    ratios = [float(x["eta"]) * UNIT[x["u"]] / max(end - a, 1e-9) for a, x in parsed
              if x["eta"] and 0.1 * wall <= a - start <= 0.9 * wall]
    if ratios:
        print(f"  ETA / truth over the lines from 10% to 90% of the run: min {min(ratios):.2f}, "
              f"max {max(ratios):.2f} ({len(ratios)} lines)")
    return eta / truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--shim", action="store_true", help="call progress.configure before the CLI's dispatch")
    ap.add_argument("--log", type=Path, default=None, help="keep a copy of the demo's stderr here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out, log = Path(tmp) / "out", Path(tmp) / "stderr.log"
        start, end, arrivals, code = run_logged([*command(args.shim), "demo", "--device", args.device, "--out",
                                                 str(out)], log)
        if code not in (0, 1):
            sys.exit(f"demo failed ({code}): {log.read_text(encoding='utf-8')[-2000:]}")
        record = json.loads((out / "results.json").read_text(encoding="utf-8"))["run_record"]
        if args.log is not None:
            args.log.write_text(log.read_text(encoding="utf-8"), encoding="utf-8")
        ratio = report(start, end, arrivals, record)
        quiet = subprocess.run([*command(args.shim), "-q", "demo", "--dry-run", "--device", args.device],
                               capture_output=True, text=True)
    print(f"-q demo --dry-run: exit {quiet.returncode}, stderr {len(quiet.stderr)} characters"
          + (f": {quiet.stderr[:300]!r}" if quiet.stderr else " (empty)"))
    ok = 0.5 <= ratio <= 2.0 and not quiet.stderr
    print("targets met" if ok else "targets NOT met")


if __name__ == "__main__":
    main()

"""Two `advaudit demo` runs started at once against one alone (target, issue 30: within 2.5x on 2 cores).

On this machine: the pair must finish within 2.5x the time of one demo. A warm-up run first (not timed: caches,
the data set, compiled kernels), then one demo alone, then two started together, each in a process of its own with
its own --out (its stdout and stderr in files beside it); prints the single wall time, both of the pair, the ratio
max(pair) / single and the threads each run's record states (every count it ran on).

By default every demo chooses its threads itself (`[execution] threads = 0`: the process's CPUs shared among the
audits running; audit/engine/execution/threads.py); `--threads-per-demo N` fixes `[execution] threads = N` in each
(the demo takes no --set: the child process sets it on the demo's config). An OMP_NUM_THREADS in this script's
environment goes to the children too. Run it on an otherwise idle machine: it uses every core for ~3 minutes.

    .venv/bin/python bench/concurrent_demos.py [--threads-per-demo N] [--no-warmup] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 2.5
OK_EXITS = (0, 1, 4)   # GO, NO-GO, INCOMPLETE: the demo ran to its verdict
ROOT = Path(__file__).resolve().parents[1]
# the demo with [execution] threads fixed: `advaudit demo` reads audit.config.demo_config when it runs
CHILD = """
import dataclasses, sys
import audit.config as cfg
from audit.cli import main
made, threads = cfg.demo_config, int(sys.argv[1])
def demo_config(*args, **kwargs):
    c = made(*args, **kwargs)
    return dataclasses.replace(c, execution=dataclasses.replace(c.execution, threads=threads))
if threads:
    cfg.demo_config = demo_config
sys.exit(main(sys.argv[2:]))
"""


def start(out: Path, threads: int, device: str) -> subprocess.Popen:
    """One demo in a process of its own; its stdout and stderr go to files beside its --out (no pipe to fill: a
    demo is never held up while the other one is being waited for)."""
    argv = [sys.executable, "-c", CHILD, str(threads), "demo", "--out", str(out), "--device", device, "-q"]
    with open(f"{out}.stdout", "wb") as stdout, open(f"{out}.stderr", "wb") as stderr:
        return subprocess.Popen(argv, cwd=ROOT, stdout=stdout, stderr=stderr)


def finish(proc: subprocess.Popen, out: Path, t0: float) -> tuple[float, dict]:
    """Wait for one demo; its wall time from ``t0`` and its run record."""
    proc.wait()
    seconds = time.perf_counter() - t0
    if proc.returncode not in OK_EXITS:
        err = Path(f"{out}.stderr").read_text(encoding="utf-8", errors="replace")
        sys.exit(f"demo failed (exit {proc.returncode}): {err.strip()[-2000:]}")
    return seconds, json.loads((out / "results.json").read_text(encoding="utf-8"))["run_record"]


def stated_threads(record: dict) -> str:
    """The threads a run record states: one count, or each count in order when they changed mid-run."""
    used = record.get("threads_used") or [record["threads"]]
    return f"{used[0]} threads" if len(used) == 1 else f"threads {' then '.join(map(str, used))}"


def alone(tmp: Path, name: str, threads: int, device: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    return finish(start(tmp / name, threads, device), tmp / name, t0)


def pair(tmp: Path, threads: int, device: str) -> list[tuple[float, dict]]:
    t0 = time.perf_counter()
    procs = [(start(tmp / f"pair{i}", threads, device), tmp / f"pair{i}") for i in (1, 2)]
    return [finish(p, out, t0) for p, out in procs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads-per-demo", type=int, default=0, metavar="N",
                    help="[execution] threads of each demo (default 0: each chooses itself)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up run (the single run then warms up)")
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    how = f"threads = {args.threads_per_demo}" if args.threads_per_demo else "automatic threads"
    print(f"machine: {cpus} CPU(s) for this process, 1-minute load {load:.2f} at the start; each demo: {how}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
    if load > 0.5:
        print("note: the machine is not idle; the times below include the other work", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.no_warmup:
            seconds, _ = alone(tmp, "warmup", args.threads_per_demo, args.device)
            print(f"warm-up demo: {seconds:.1f} s (not counted)", flush=True)
        single, record = alone(tmp, "single", args.threads_per_demo, args.device)
        print(f"one demo alone: {single:.1f} s ({stated_threads(record)})"
              + (" (the first run: it includes the warm-up)" if args.no_warmup else ""), flush=True)
        both = pair(tmp, args.threads_per_demo, args.device)
    for i, (seconds, rec) in enumerate(both, 1):
        print(f"demo {i} of the pair: {seconds:.1f} s ({stated_threads(rec)})")
    ratio = max(s for s, _ in both) / single
    print(f"two at once: max(pair) / single = {ratio:.2f}x; target <= {TARGET}x: "
          f"{'MET' if ratio <= TARGET else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

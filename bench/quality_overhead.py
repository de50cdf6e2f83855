"""What the calibration, corruption and OOD checks add to the demo's wall time (issue 8 target: <= 20%).

Runs the demo configuration end to end in fresh processes, alternating with and without those checks, and
prints the medians and the ratio. Usage: python bench/quality_overhead.py [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audit.checks import CHECKS

QUALITY = ("calibration", "corruptions", "ood")
DEMO = """candidate = "pgd_at"
checks = [{checks}]
[[defences]]
name = "pgd_at"
method = "pgd"
eps = 0.1
steps = 7
"""


def timed_run(config: Path, out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "audit", "run", "--config", str(config), "--out", str(out)],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr[-2000:])
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = {}
        for label, checks in (("with", tuple(CHECKS)), ("without", tuple(c for c in CHECKS if c not in QUALITY))):
            configs[label] = root / f"{label}.toml"
            configs[label].write_text(DEMO.format(checks=", ".join(f'"{c}"' for c in checks)), encoding="utf-8")
        times = {"with": [], "without": []}
        for i in range(args.runs):
            for label in ("without", "with"):
                times[label].append(timed_run(configs[label], root / f"out-{label}-{i}"))
                print(f"run {i + 1} {label:>7} quality checks: {times[label][-1]:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = statistics.median(w / wo for w, wo in zip(times["with"], times["without"], strict=False)) - 1
    fastest = min(times["with"]) / min(times["without"]) - 1
    print(f"demo median without {', '.join(QUALITY)}: {med['without']:.1f} s; with: {med['with']:.1f} s")
    print(f"added: {paired:+.1%} (median of paired runs), {fastest:+.1%} (fastest vs fastest); target <= +20%: "
          f"{'met' if paired <= 0.2 else 'NOT met'}")


if __name__ == "__main__":
    main()

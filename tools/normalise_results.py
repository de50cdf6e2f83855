"""Print a results.json with what changes from run to run blanked: the creation time, durations, per-stage seconds,
the share of wall time the stages account for, and peak memory. Two runs of the same config and seed then diff empty:

    diff <(python tools/normalise_results.py A/results.json) <(python tools/normalise_results.py B/results.json)
"""
from __future__ import annotations

import json
import sys

TIMING = {"created", "duration_seconds", "seconds", "wall_seconds", "train_seconds", "accounted",  # clock time
          "peak_host_mb", "peak_device_mb"}  # memory peaks


def blank(value):
    if isinstance(value, dict):
        return {k: ("<varies>" if k in TIMING else blank(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [blank(v) for v in value]
    return value


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        print(json.dumps(blank(json.load(f)), indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])

"""The ART agreement finding over seeds (issue 27): the demo's data, model and recipe with only the ART cross-check,
for seeds 0-4 (and, with --threads 2, with two torch threads), printing per variant and attack our robust accuracy
and ART's on the same points, the points only ART / only ours broke, the exact paired p-value and the finding's
status. The target: no seed fails on a model whose attacks are at least as strong as ART's.

    .venv/bin/python bench/art_agreement_seeds.py [--seeds 5] [--threads 1] [--defence pgd|fgsm_rs]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audit.config import DefenceConfig  # noqa: E402
from audit.config.load import demo_config  # noqa: E402
from audit.config.policy import load_policy  # noqa: E402
from audit.engine.pipeline import run_audit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--defence", default="pgd", choices=("pgd", "fgsm_rs"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = demo_config()
    failed = 0
    print(f"{'seed':>4} {'variant':<9} {'attack':<8} {'points':>6} {'ours':>7} {'ART':>7} {'only ART':>8} "
          f"{'only ours':>9} {'p':>6}  status")
    for seed in range(args.seeds):
        config = dataclasses.replace(base, seed=seed, checks=("art_agreement",), candidate="at",
                                     defences=(DefenceConfig(name="at", method=args.defence),))
        start = time.perf_counter()
        result = run_audit(config, policy=load_policy("default"))
        for f in (f for f in result.findings if f.check == "art_agreement"):
            failed += f.status.value == "fail"
            for name, c in f.details.attacks.items():
                print(f"{seed:>4} {f.variant:<9} {name:<8} {c.points:>6} {c.ours:>7.1%} {c.art:>7.1%} "
                      f"{c.only_art:>8} {c.only_ours:>9} {c.p_value:>6.2f}  {f.status.value}")
        print(f"     seed {seed}: {time.perf_counter() - start:.0f} s")
    print(f"failed findings: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

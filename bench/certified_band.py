"""The certified band of every variant of the demo, with an IBP-trained variant added (issue 31's targets): runs
the built-in demo's config with the opt-in ``certified`` check on and a ``[[defences]] method = "ibp"`` variant,
then prints, per variant and eps, the certified share, the empirical worst case, the gap, CROWN's seconds and C17.

Usage: python bench/certified_band.py [--out DIR] [--no-ibp]
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import audit
from audit.checks import CHECKS
from audit.config import demo_config
from audit.config.defences import DefenceConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="", help="write the audit here (default: a temporary folder)")
    p.add_argument("--no-ibp", action="store_true", help="the demo's variants only")
    a = p.parse_args()
    cfg = demo_config()
    extra = () if a.no_ibp else (DefenceConfig(name="ibp", method="ibp"),)
    cfg = dataclasses.replace(cfg, checks=tuple(c for c, k in CHECKS.items() if k.by_default) + ("certified",),
                              defences=cfg.defences + extra)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = audit.run(cfg, out=a.out or tmp).result
        print(f"verdict {result.verdict.value}, {time.perf_counter() - start:.1f} s")
    clean = {v.name: v.clean_accuracy.value for v in result.variants if v.clean_accuracy}
    for f in result.findings:
        if f.check != "certified" or f.details is None:
            continue
        d = f.details
        print(f"{f.variant} (clean {clean.get(f.variant, float('nan')):.1%}): {d.band}; C17 {d.soundness.status.value}"
              f"; IBP layers {', '.join(d.ibp_layers) or 'none'}")
        for pt in d.points:
            print(f"  eps {pt.eps:g}: certified {pt.certified:6.1%}  worst case {pt.empirical:6.1%}  "
                  f"gap {100 * pt.gap:5.1f} points  {pt.seconds:5.1f} s")


if __name__ == "__main__":
    main()

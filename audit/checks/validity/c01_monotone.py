"""C1: robust accuracy never rises with eps (beyond the tolerance), for any attack."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, Probe, ValidityCheck, ValidityResult


class Monotone(ValidityCheck):
    id, name = "C1", "monotone in eps"

    def evaluate(self, p: Probe) -> ValidityResult:
        acc, tol = p.accuracy(), p.thresholds.tolerance
        grid = sorted({e for _, e in acc})
        bad = [f"{a} {acc[(a, lo)]:.1%} at eps {lo:g} -> {acc[(a, hi)]:.1%} at eps {hi:g}"
               for a in sorted({a for a, _ in acc}) for lo, hi in zip(grid, grid[1:], strict=False)
               if acc[(a, hi)] > acc[(a, lo)] + tol]
        if bad:
            return self.result(FAIL, "robust accuracy rises with eps: " + "; ".join(bad), {"violations": bad})
        return self.result(PASS, f"no attack gains accuracy as eps grows ({len(grid)} eps, tolerance {tol:.0%})")

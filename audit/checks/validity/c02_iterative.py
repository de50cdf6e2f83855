"""C2: every iterative attack is at least as strong as single-step FGSM at every eps (beyond the tolerance)."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, SKIPPED, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE


class Iterative(ValidityCheck):
    id, name = "C2", "iterative beats single-step"

    def evaluate(self, p: Probe) -> ValidityResult:
        acc, tol = p.accuracy(), p.thresholds.tolerance
        attacks = {a for a, _ in acc}
        if "fgsm" not in attacks:
            return self.result(SKIPPED, "FGSM is not in the attack grid")
        iterative = sorted(a for a in attacks if a not in ("fgsm", WORST_CASE))
        if not iterative:
            return self.result(SKIPPED, "no iterative attack in the grid")
        bad = [f"{a} {acc[(a, e)]:.1%} vs FGSM {acc[('fgsm', e)]:.1%} at eps {e:g}"
               for a in iterative for (b, e) in acc if b == "fgsm" and acc[(a, e)] > acc[("fgsm", e)] + tol]
        if bad:
            return self.result(FAIL, "an iterative attack is weaker than FGSM (gradient masking or a misconfigured "
                               "attack): " + "; ".join(bad), {"violations": bad})
        return self.result(PASS, f"{', '.join(iterative)} at or below FGSM at every eps")

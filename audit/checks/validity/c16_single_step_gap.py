"""C16: at no eps is single-step FGSM much stronger-looking than the strongest iterative attack. A model whose
FGSM accuracy stays high while PGD/APGD break it has overfitted to single-step perturbations (catastrophic
overfitting, Wong et al. 2020) or masks its gradients locally; it is judged by the iterative number, and the gap
itself fails the validity of a robustness claim. Applies to supplied checkpoints as well as trained ones."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, SKIPPED, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE


class SingleStepGap(ValidityCheck):
    id, name = "C16", "single-step / iterative gap"

    def evaluate(self, p: Probe) -> ValidityResult:
        acc, limit = p.accuracy(), p.thresholds.single_step_gap
        if not any(a == "fgsm" for a, _ in acc):
            return self.result(SKIPPED, "FGSM is not in the attack grid")
        iterative = sorted({a for a, _ in acc} - {"fgsm", WORST_CASE})
        if not iterative:
            return self.result(SKIPPED, "no iterative attack in the grid")
        rows, bad = [], []
        for eps in sorted({e for a, e in acc if a == "fgsm"}):
            strongest = min(iterative, key=lambda a: acc[(a, eps)])
            gap = acc[("fgsm", eps)] - acc[(strongest, eps)]
            rows.append({"eps": eps, "fgsm": acc[("fgsm", eps)], "strongest": strongest,
                         "iterative": acc[(strongest, eps)], "gap": gap})
            if gap > limit:
                bad.append(f"eps {eps:g}: FGSM {acc[('fgsm', eps)]:.1%} vs {strongest} {acc[(strongest, eps)]:.1%}")
        worst = max(rows, key=lambda r: r["gap"])
        values = {"rows": rows, "max_gap": worst["gap"], "limit": limit}
        if bad:
            return self.result(FAIL, f"FGSM robust accuracy exceeds the strongest iterative attack's by more than "
                               f"{limit:.0%} ({'; '.join(bad)}): catastrophic overfitting or gradient masking "
                               f"suspected; the iterative number is the one that counts", values)
        return self.result(PASS, f"largest FGSM - iterative gap {worst['gap']:+.1%} at eps {worst['eps']:g} "
                           f"(limit {limit:.0%})", values)

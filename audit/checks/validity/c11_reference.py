"""C11: the attacks drive an undefended, naturally trained reference model of this run near 0% at the largest eps."""
from __future__ import annotations

from audit.checks.validity.base import PASS, SKIPPED, WARN, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE


class Reference(ValidityCheck):
    id, name = "C11", "attack works on an undefended reference"

    def evaluate(self, p: Probe) -> ValidityResult:
        if p.reference is None:
            return self.result(SKIPPED, p.reference_reason or "no naturally trained variant in this run")
        if p.kind != "image":
            return self.result(SKIPPED, "tabular features have no standard eps at which an undefended model must "
                               "break; C4 checks that the attack reaches chance")
        name, grid = p.reference
        top = max(pt.eps for pt in grid.points)
        acc = next(pt.robust_accuracy for pt in grid.points if pt.attack == WORST_CASE and pt.eps == top)
        values = {"reference": name, "eps": top, "robust_accuracy": acc}
        text = f"worst case on the naturally trained '{name}' at eps {top:g}: {acc:.1%}"
        limit = p.thresholds.reference_max_accuracy
        if acc <= limit:
            return self.result(PASS, text, values)
        return self.result(WARN, text + f" (above {limit:.0%}): the attacks may be weak, or the grid stops at a "
                           "small eps", values)

"""C12: the per-example worst case is never weaker than any member attack (mean_x min_attack)."""
from __future__ import annotations

import numpy as np

from audit.checks.validity.base import FAIL, PASS, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE


class WorstCase(ValidityCheck):
    id, name = "C12", "per-example worst case"

    def evaluate(self, p: Probe) -> ValidityResult:
        bad = [f"{a} at eps {e:g}" for (a, e), mask in p.grid.correct.items()
               if a != WORST_CASE and np.any(p.grid.correct[(WORST_CASE, e)] & ~mask)]
        if bad:
            return self.result(FAIL, "the worst case counts points as robust that a member attack broke: "
                               + ", ".join(bad))
        return self.result(PASS, "worst case is the per-example minimum (mean_x min_attack): never above any member "
                           "attack")

"""C4: an attack with no effective bound reaches chance accuracy (else gradients do not lead the attack)."""
from __future__ import annotations

import math

from attacks.base import Norm
from audit.checks.validity.base import FAIL, PASS, WARN, Probe, ValidityCheck, ValidityResult


def unbounded_eps(p: Probe) -> float:
    """Linf: half the input range (any input reaches mid-grey); L2: the same box's half-diagonal."""
    half = 0.5 * p.range_width
    return half if p.norm is Norm.LINF else half * math.sqrt(p.x[0].numel())


class Unbounded(ValidityCheck):
    id, name = "C4", "unbounded attack reaches chance"

    def evaluate(self, p: Probe) -> ValidityResult:
        eps = unbounded_eps(p)
        steps = max(2 * p.settings.pgd_steps, 40)
        acc = float(p.robust_under("pgd", eps, steps=steps, restarts=1, early_stop=True).mean())
        chance = 1.0 / p.num_classes
        values = {"eps": eps, "accuracy": acc, "chance": chance, "steps": steps}
        text = (f"PGD-{steps} at {p.norm.value} eps {eps:g} (unbounded for this range) leaves {acc:.1%} accuracy; "
                f"chance is {chance:.1%}")
        t = p.thresholds
        if acc <= chance + t.unbounded_pass_margin:
            return self.result(PASS, text, values)
        status = WARN if acc <= chance + t.unbounded_warn_margin else FAIL
        return self.result(status, text + ": gradients do not lead the attack even with no effective bound "
                           "(gradient masking, or a non-differentiable step in the model)", values)

"""C11: the attacks drive an undefended, naturally trained reference model of this run near 0% at the largest eps.

The reference is a variant this run trained naturally, or else a supplied model the config declares naturally
trained (``model.training = "natural"`` for the baseline, a ``[[defences]]`` checkpoint with method "none"):
``declared_reference``."""
from __future__ import annotations

from audit.checks.run_view import RobustnessGrid
from audit.checks.validity.base import PASS, SKIPPED, WARN, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE

UNKNOWN_REFERENCE = ("no variant of this run was naturally trained here and the supplied baseline's training is "
                     "unknown: if it was trained without a defence, declare it in the config ([model] training = "
                     "\"natural\") and C11 checks that the attacks break it; training = \"adversarial\" says it "
                     "was not")


def _natural_checkpoint(defence) -> bool:
    return defence is not None and bool(defence.weights) and defence.method == "none" and \
        not defence.mixup_alpha and not defence.input_noise


def declared_reference(ctx):
    """(name, grid) of a supplied model the config declares naturally trained: the baseline with
    ``model.training = "natural"``, else a defence checkpoint with method "none"; or (None, why there is none)."""
    declared = getattr(ctx.config.model, "training", "unknown")
    base = ctx.variants.get("baseline")
    if declared == "natural" and base is not None and base.defence is None:
        return ("baseline", ctx.get(RobustnessGrid, "baseline")), ""
    for name, v in ctx.variants.items():
        if v.train_stats is None and _natural_checkpoint(v.defence):
            return (name, ctx.get(RobustnessGrid, name)), ""
    if declared == "adversarial":
        return None, ("no variant of this run was naturally trained here and the supplied baseline is declared "
                      "adversarially trained (model.training = \"adversarial\"): there is no undefended reference")
    return None, UNKNOWN_REFERENCE


class Reference(ValidityCheck):
    id, name = "C11", "attack works on an undefended reference"

    def evaluate(self, p: Probe) -> ValidityResult:
        if p.reference is None:
            return self.result(SKIPPED, p.reference_reason or UNKNOWN_REFERENCE)
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

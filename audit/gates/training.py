"""Gates that need more than one variant or the training record: C11 the attack drives an undefended, naturally
trained reference model near 0%, C14 no catastrophic overfitting during FGSM training."""
from __future__ import annotations

from audit.gates.base import FAIL, PASS, SKIPPED, WARN, GateResult, Probe

NEAR_ZERO = 0.10


def c11_reference(p: Probe) -> GateResult:
    if p.reference is None:
        return GateResult("C11", "attack works on an undefended reference", SKIPPED,
                          p.reference_reason or "no naturally trained variant in this run")
    if p.kind != "image":
        return GateResult("C11", "attack works on an undefended reference", SKIPPED,
                          "tabular features have no standard eps at which an undefended model must break; C4 checks "
                          "that the attack reaches chance")
    name, grid = p.reference
    top = max(pt.eps for pt in grid.points)
    acc = next(pt.robust_accuracy for pt in grid.points if pt.attack == "worst_case" and pt.eps == top)
    values = {"reference": name, "eps": top, "robust_accuracy": acc}
    text = f"worst case on the naturally trained '{name}' at eps {top:g}: {acc:.1%}"
    if acc <= NEAR_ZERO:
        return GateResult("C11", "attack works on an undefended reference", PASS, text, values)
    return GateResult("C11", "attack works on an undefended reference", WARN,
                      text + f" (above {NEAR_ZERO:.0%}): the attacks may be weak, or the grid stops at a small eps",
                      values)


def c14_catastrophic_overfitting(p: Probe) -> GateResult:
    d = p.defence
    if d is None or d.method != "fgsm_rs":
        return GateResult("C14", "no catastrophic overfitting", SKIPPED, "not trained with FGSM")
    if p.training is None:
        return GateResult("C14", "no catastrophic overfitting", SKIPPED, "trained outside this audit (checkpoint)")
    history = list(p.training.guard_history)
    values = {"pgd_probe_accuracy_per_epoch": history}
    if p.training.stopped_early:
        return GateResult("C14", "no catastrophic overfitting", WARN, p.training.stopped_early, values)
    drops = [max(history[:i]) - h for i, h in enumerate(history) if i]
    worst = max(drops, default=0.0)
    text = (f"PGD-10 accuracy on a 256-point training probe per epoch: "
            f"{', '.join(f'{h:.0%}' for h in history)}; largest fall from the best epoch {max(worst, 0):.0%}")
    if worst > 0.2:
        return GateResult("C14", "no catastrophic overfitting", FAIL, text, values)
    return GateResult("C14", "no catastrophic overfitting", PASS, text, values)

"""C16: at no eps is single-step FGSM much stronger-looking than the strongest iterative attack for the wrong reason.

A gap between FGSM's robust accuracy and the strongest iterative attack's above ``single_step_gap`` is one of two
things, told apart by clean accuracy (on the probe points, never below the share of test points some attack of
the grid left correct):

* the single-step signature: FGSM's accuracy stays nearer clean accuracy than the iterative attack's (FGSM takes
  less than ``DAMAGE_SHARE`` of the points the iterative attack takes from clean), or the variant was trained with
  a single-step method. The model has overfitted to single-step perturbations (catastrophic overfitting, Wong et
  al. 2020) when it was single-step trained, or masks its gradients locally (single-step gradient masking) when
  it was not: the gap fails the validity of a robustness claim;
* the ordinary gap of a non-robust model at a large eps: FGSM itself already takes most of what the iterative
  attack takes; FGSM is a weaker attack, which passes.

Either way the variant is judged by the iterative number. Applies to supplied checkpoints as well as trained ones.
"""
from __future__ import annotations

import numpy as np

from audit.checks.validity.base import FAIL, PASS, SKIPPED, Probe, ValidityCheck, ValidityResult
from audit.core.metrics import WORST_CASE

SINGLE_STEP_METHODS = ("fgsm", "fgsm_rs")
DAMAGE_SHARE = 0.5   # FGSM takes less than this share of the iterative attack's drop from clean: the signature


def clean_accuracy(p: Probe) -> float:
    """Clean accuracy on the probe points, at least the share of test points robust under some attack of the grid
    (a point robust under an attack is clean-correct)."""
    masks = list(p.grid.correct.values())
    robust_somewhere = float(np.logical_or.reduce(masks).mean()) if masks else 0.0
    return max(float(np.mean(p.clean_ok())) if len(p.idx) else 0.0, robust_somewhere)


def cause(p: Probe) -> tuple[str, str]:
    """(name, explanation) of the single-step signature for this variant: by how it was trained, where known."""
    method = getattr(p.defence, "method", None)
    if method in SINGLE_STEP_METHODS:
        return "catastrophic overfitting", (f"the variant was trained with single-step {method}: it learned to "
                                            f"resist FGSM, not the threat model")
    if p.training is not None or p.defence is not None:
        return "single-step gradient masking", ("the variant was not single-step trained, yet FGSM stays nearer "
                                                "clean accuracy than the iterative attack: its gradients mislead "
                                                "a one-step attack locally")
    return "catastrophic overfitting or single-step gradient masking", (
        "FGSM stays nearer clean accuracy than the iterative attack: catastrophic overfitting if this supplied "
        "model was trained with single-step FGSM, otherwise its gradients mislead a one-step attack locally")


def gap_rows(p: Probe, iterative: list[str], clean: float) -> list[dict]:
    acc = p.accuracy()
    single_step = getattr(p.defence, "method", None) in SINGLE_STEP_METHODS
    rows = []
    for eps in sorted({e for a, e in acc if a == "fgsm"}):
        strongest = min(iterative, key=lambda a: acc[(a, eps)])
        fgsm, it = acc[("fgsm", eps)], acc[(strongest, eps)]
        share = (clean - fgsm) / (clean - it) if clean > it else 1.0
        rows.append({"eps": eps, "fgsm": fgsm, "strongest": strongest, "iterative": it, "gap": fgsm - it,
                     "damage_share": share, "signature": single_step or share < DAMAGE_SHARE})
    return rows


def describe(r: dict) -> str:
    return (f"eps {r['eps']:g}: FGSM {r['fgsm']:.1%} vs {r['strongest']} {r['iterative']:.1%}, FGSM takes "
            f"{max(r['damage_share'], 0.0):.0%} of the iterative attack's drop from clean")


class SingleStepGap(ValidityCheck):
    id, name = "C16", "single-step / iterative gap"

    def evaluate(self, p: Probe) -> ValidityResult:
        acc, limit = p.accuracy(), p.thresholds.single_step_gap
        if not any(a == "fgsm" for a, _ in acc):
            return self.result(SKIPPED, "FGSM is not in the attack grid")
        iterative = sorted({a for a, _ in acc} - {"fgsm", WORST_CASE})
        if not iterative:
            return self.result(SKIPPED, "no iterative attack in the grid")
        clean = clean_accuracy(p)
        rows = gap_rows(p, iterative, clean)
        worst = max(rows, key=lambda r: r["gap"])
        values = {"rows": rows, "max_gap": worst["gap"], "limit": limit, "clean": clean}
        wide = [r for r in rows if r["gap"] > limit]
        signature = [r for r in wide if r["signature"]]
        if signature:
            name, why = cause(p)
            values["diagnosis"] = name
            return self.result(FAIL, f"FGSM robust accuracy exceeds the strongest iterative attack's by more than "
                               f"{limit:.0%} ({'; '.join(map(describe, signature))}; clean {clean:.1%}): {name} "
                               f"({why}); the iterative number is the one that counts", values)
        if wide:
            values["diagnosis"] = "ordinary gap"
            return self.result(PASS, f"FGSM is more than {limit:.0%} above the strongest iterative attack "
                               f"({'; '.join(map(describe, wide))}; clean {clean:.1%}), but FGSM itself already "
                               f"takes most of what the iterative attack takes from clean accuracy: the ordinary "
                               f"gap of a non-robust model at a large eps (FGSM is a weaker attack), not the "
                               f"single-step signature; the iterative number is the one that counts", values)
        return self.result(PASS, f"largest FGSM - iterative gap {worst['gap']:+.1%} at eps {worst['eps']:g} "
                           f"(limit {limit:.0%})", values)

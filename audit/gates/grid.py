"""Gates read from the attack grid itself: C1 monotone in eps, C2 iterative not weaker than single-step,
C10 perturbation validity, C12 the per-example worst case never weaker than a member, C13 eps units."""
from __future__ import annotations

import numpy as np

from audit.gates.base import FAIL, PASS, WARN, GateResult, Probe

TOLERANCE = 0.01  # one point of accuracy


def _acc(p: Probe) -> dict:
    return {(pt.attack, pt.eps): pt.robust_accuracy for pt in p.grid.points}


def c1_monotone(p: Probe) -> GateResult:
    acc = _acc(p)
    grid = sorted({e for _, e in acc})
    bad = [f"{a} {acc[(a, lo)]:.1%} at eps {lo:g} -> {acc[(a, hi)]:.1%} at eps {hi:g}"
           for a in sorted({a for a, _ in acc}) for lo, hi in zip(grid, grid[1:])
           if acc[(a, hi)] > acc[(a, lo)] + TOLERANCE]
    if bad:
        return GateResult("C1", "monotone in eps", FAIL, "robust accuracy rises with eps: " + "; ".join(bad),
                          {"violations": bad})
    return GateResult("C1", "monotone in eps", PASS, f"no attack gains accuracy as eps grows ({len(grid)} eps, "
                      f"tolerance {TOLERANCE:.0%})")


def c2_iterative(p: Probe) -> GateResult:
    acc = _acc(p)
    attacks = {a for a, _ in acc}
    if "fgsm" not in attacks:
        return GateResult("C2", "iterative beats single-step", "skipped", "FGSM is not in the attack grid")
    iterative = sorted(a for a in attacks if a not in ("fgsm", "worst_case"))
    if not iterative:
        return GateResult("C2", "iterative beats single-step", "skipped", "no iterative attack in the grid")
    bad = [f"{a} {acc[(a, e)]:.1%} vs FGSM {acc[('fgsm', e)]:.1%} at eps {e:g}"
           for a in iterative for (b, e) in acc if b == "fgsm" and acc[(a, e)] > acc[("fgsm", e)] + TOLERANCE]
    if bad:
        return GateResult("C2", "iterative beats single-step", FAIL,
                          "an iterative attack is weaker than FGSM (gradient masking or a misconfigured attack): "
                          + "; ".join(bad), {"violations": bad})
    return GateResult("C2", "iterative beats single-step", PASS,
                      f"{', '.join(iterative)} at or below FGSM at every eps")


def c10_validity(p: Probe) -> GateResult:
    v = p.grid.validity
    bad = []
    if v.max_norm_ratio > 1 + 1e-5:
        bad.append(f"a perturbation exceeds eps by a factor {v.max_norm_ratio:.6f}")
    if v.out_of_range:
        bad.append(f"{v.out_of_range} adversarial values outside the clip range")
    if v.non_finite:
        bad.append(f"{v.non_finite} adversarial values are NaN or Inf")
    values = {"max_norm_ratio": v.max_norm_ratio, "out_of_range": v.out_of_range, "non_finite": v.non_finite}
    if bad:
        return GateResult("C10", "perturbation validity", FAIL, "; ".join(bad), values)
    return GateResult("C10", "perturbation validity", PASS, f"every adversarial example inside the eps-ball (max "
                      f"||delta||/eps = {v.max_norm_ratio:.6f}) and the clip range, all finite", values)


def c12_worst_case(p: Probe) -> GateResult:
    bad = []
    for (a, e), mask in p.grid.correct.items():
        if a == "worst_case":
            continue
        if np.any(p.grid.correct[("worst_case", e)] & ~mask):
            bad.append(f"{a} at eps {e:g}")
    if bad:
        return GateResult("C12", "per-example worst case", FAIL,
                          "the worst case counts points as robust that a member attack broke: " + ", ".join(bad))
    return GateResult("C12", "per-example worst case", PASS,
                      "worst case is the per-example minimum (mean_x min_attack): never above any member attack")


def c13_eps_units(p: Probe) -> GateResult:
    eps = max(pt.eps for pt in p.grid.points)
    width = p.range_width
    if eps > width:
        return GateResult("C13", "eps units", FAIL, f"eps {eps:g} exceeds the input range {width:g}: eps is probably "
                          f"in the wrong units (e.g. 8 instead of 8/255)", {"max_eps": eps, "range": width})
    if p.norm.value == "linf" and eps > 0.5 * width:
        return GateResult("C13", "eps units", WARN, f"Linf eps {eps:g} is more than half the input range {width:g}: "
                          f"any input can be moved to mid-grey; check the units", {"max_eps": eps, "range": width})
    return GateResult("C13", "eps units", PASS, f"largest eps {eps:g} within the input range {width:g}",
                      {"max_eps": eps, "range": width})


def c15_true_labels(p: Probe) -> GateResult:
    if not p.labels_are_dataset_labels:
        return GateResult("C15", "true labels", FAIL, "the attacks were not given the dataset's labels")
    return GateResult("C15", "true labels", PASS, "attacks receive the dataset's true labels and robust accuracy is "
                      "scored against them (never the model's predictions)")

"""Validity gates on the attack grid itself (Carlini et al. 2019; REFERENCE section 4).

C1 monotone in eps, C2 iterative (PGD) not weaker than single-step (FGSM), C10 perturbations inside the eps-ball
and the clip range with no NaN/Inf, C13 eps in the units of the clip range, C15 attacks and scoring use true labels
(by construction of the evaluation engine). A violation means the robustness numbers should not be trusted.
"""
from __future__ import annotations

from audit.checks.base import controls
from audit.checks.robustness import robustness_eval
from audit.context import Context
from audit.result import Measurement

TOLERANCE = 0.01  # one point of accuracy: the attacks are stochastic


class AttackValidity:
    id = "attack_validity"
    title = "Attack validity (is the robustness number trustworthy?)"
    scope = "variant"
    controls = controls(MEASURE_2_13="direct", MEASURE_1_2="supporting")
    description = "Monotone in eps, PGD not weaker than FGSM, perturbations valid, eps in input units."

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        ev = robustness_eval(ctx, variant)
        acc = {(p.attack, p.eps): p.robust_accuracy for p in ev.points}
        attacks = sorted({p.attack for p in ev.points})
        grid = sorted({p.eps for p in ev.points})
        problems = []
        for a in attacks:
            for lo, hi in zip(grid, grid[1:]):
                if acc[(a, hi)] > acc[(a, lo)] + TOLERANCE:
                    problems.append(f"C1: {a} robust accuracy rises from {acc[(a, lo)]:.1%} at eps {lo:g} "
                                    f"to {acc[(a, hi)]:.1%} at eps {hi:g}")
        if "pgd" in attacks and "fgsm" in attacks:
            for e in grid:
                if acc[("pgd", e)] > acc[("fgsm", e)] + TOLERANCE:
                    problems.append(f"C2: PGD ({acc[('pgd', e)]:.1%}) weaker than FGSM ({acc[('fgsm', e)]:.1%}) "
                                    f"at eps {e:g}: gradient masking or a misconfigured attack")
        v = ev.validity
        if v.max_norm_ratio > 1 + 1e-5:
            problems.append(f"C10: a perturbation exceeds eps by a factor {v.max_norm_ratio:.6f}")
        if v.out_of_range:
            problems.append(f"C10: {v.out_of_range} adversarial values fall outside the clip range")
        if v.non_finite:
            problems.append(f"C10: {v.non_finite} adversarial values are NaN or Inf")
        lo, hi = ctx.data.clip
        if max(grid) > hi - lo:
            problems.append(f"C13: eps {max(grid):g} exceeds the input range {hi - lo:g}; eps is probably in "
                            f"the wrong units (e.g. 8 instead of 8/255)")
        return Measurement(
            check=self.id, variant=variant,
            metrics={"violations": float(len(problems)), "max_norm_ratio": v.max_norm_ratio},
            details={"problems": problems, "tolerance": TOLERANCE, "labels": "true labels (C15)",
                     "gates": ["C1 monotone in eps", "C2 PGD <= FGSM", "C10 perturbation validity",
                               "C13 eps units", "C15 true labels"]},
            summary="all validity gates hold" if not problems else f"{len(problems)} violation(s): {problems[0]}")

"""C10: every adversarial example lies in the eps-ball and the clip range, and is finite."""
from __future__ import annotations

from audit.checks.validity.base import FAIL, PASS, Probe, ValidityCheck, ValidityResult


class PerturbationValidity(ValidityCheck):
    id, name = "C10", "perturbation validity"

    def evaluate(self, p: Probe) -> ValidityResult:
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
            return self.result(FAIL, "; ".join(bad), values)
        return self.result(PASS, f"every adversarial example inside the eps-ball (max ||delta||/eps = "
                           f"{v.max_norm_ratio:.6f}) and the clip range, all finite", values)

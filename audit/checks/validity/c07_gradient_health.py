"""C7: input gradients are healthy: few points with an all-zero gradient, none with NaN or Inf."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attacks.base import frozen_eval
from audit.checks.validity.base import FAIL, PASS, WARN, Probe, ValidityCheck, ValidityResult


class GradientHealth(ValidityCheck):
    id, name = "C7", "gradient health"

    def evaluate(self, p: Probe) -> ValidityResult:
        with frozen_eval(p.model):
            x = p.x.detach().clone().requires_grad_(True)
            loss = F.cross_entropy(p.model(x), p.y, reduction="sum")
            (g,) = torch.autograd.grad(loss, x)
        flat = g.flatten(1)
        finite = torch.isfinite(flat).all(1)
        zero = finite & (flat.abs().amax(1) == 0)
        n = flat.shape[0]
        zero_share, bad_share = float(zero.float().mean()), float((~finite).float().mean())
        values = {"points": n, "zero_gradient": zero_share, "non_finite_gradient": bad_share,
                  "median_norm": float(flat[finite].norm(dim=1).median()) if finite.any() else 0.0}
        text = f"{zero_share:.1%} of {n} points have an all-zero input gradient, {bad_share:.1%} a NaN/Inf one"
        t = p.thresholds
        if bad_share > 0 or zero_share > t.zero_gradient_fail:
            return self.result(FAIL, text + ": gradient-based attacks cannot be trusted here (saturated softmax, a "
                               "non-differentiable input step, or overflow)", values)
        if zero_share > t.zero_gradient_warn:
            return self.result(WARN, text, values)
        return self.result(PASS, text, values)

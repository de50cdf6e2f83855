"""Gates on the model as the attacks see it: C7 gradient health, C8 determinism / eval mode / batch invariance,
C9 logits rather than probabilities."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attacks.base import frozen_eval
from audit.gates.base import FAIL, PASS, WARN, GateResult, Probe


def c7_gradient_health(p: Probe) -> GateResult:
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
    if bad_share > 0 or zero_share > 0.10:
        return GateResult("C7", "gradient health", FAIL, text + ": gradient-based attacks cannot be trusted here "
                          "(saturated softmax, a non-differentiable input step, or overflow)", values)
    if zero_share > 0.01:
        return GateResult("C7", "gradient health", WARN, text, values)
    return GateResult("C7", "gradient health", PASS, text, values)


def c8_determinism(p: Probe) -> GateResult:
    problems, notes = [], []
    p.model.eval()
    training = [name or "(root)" for name, m in p.model.named_modules() if m.training]
    if training:
        problems.append(f"modules still in train mode after eval(): {', '.join(training[:3])}")
    with frozen_eval(p.model), torch.no_grad():
        a, b = p.model(p.x), p.model(p.x)
        k = min(16, p.x.shape[0])
        single = torch.cat([p.model(p.x[i:i + 1]) for i in range(k)])
    if not torch.equal(a.argmax(1), b.argmax(1)):
        problems.append(f"{int((a.argmax(1) != b.argmax(1)).sum())} predictions change between two identical "
                        f"forwards (a stochastic model: attacks need EOT and the number is not reproducible)")
    diff = float((a - b).abs().max())
    scale = float(a.abs().max()) or 1.0
    if diff > 1e-4 * scale and not problems:
        notes.append(f"repeated forwards differ by {diff:.2e} in the logits")
    if not torch.equal(single.argmax(1), a[:k].argmax(1)):
        problems.append("predictions depend on the batch they are computed in (batch statistics in eval mode?)")
    bdiff = float((single - a[:k]).abs().max())
    if bdiff > 1e-3 * scale and not problems:
        notes.append(f"logits depend on the batch by up to {bdiff:.2e}")
    values = {"repeat_max_diff": diff, "batch_max_diff": bdiff, "train_mode_modules": training[:10]}
    if problems:
        return GateResult("C8", "determinism, eval mode, batch invariance", FAIL, "; ".join(problems), values)
    if notes:
        return GateResult("C8", "determinism, eval mode, batch invariance", WARN, "; ".join(notes), values)
    return GateResult("C8", "determinism, eval mode, batch invariance", PASS,
                      f"identical repeated forwards, every module in eval mode, batch-of-1 logits within "
                      f"{bdiff:.1e} of the batched ones", values)


def c9_logits(p: Probe) -> GateResult:
    with frozen_eval(p.model), torch.no_grad():
        z = p.model(p.x).float()
    simplex = bool((z >= -1e-6).all() and torch.allclose(z.sum(1), torch.ones(z.shape[0], device=z.device),
                                                         atol=1e-3))
    if simplex:
        return GateResult("C9", "logits, not probabilities", FAIL,
                          "every output row is a probability vector: the model ends in softmax, so cross-entropy "
                          "attacks see squashed gradients and robust accuracy is overstated; return logits",
                          {"probability_rows": z.shape[0]})
    return GateResult("C9", "logits, not probabilities", PASS, "outputs are not a probability simplex (logits)")

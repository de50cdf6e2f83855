"""C8: the model is deterministic, in eval mode, and its outputs do not depend on the batch they are computed in."""
from __future__ import annotations

import torch

from attacks.base import frozen_eval
from audit.checks.validity.base import FAIL, PASS, WARN, Probe, ValidityCheck, ValidityResult


class Determinism(ValidityCheck):
    id, name = "C8", "determinism, eval mode, batch invariance"

    def evaluate(self, p: Probe) -> ValidityResult:
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
            return self.result(FAIL, "; ".join(problems), values)
        if notes:
            return self.result(WARN, "; ".join(notes), values)
        return self.result(PASS, f"identical repeated forwards, every module in eval mode, batch-of-1 logits "
                           f"within {bdiff:.1e} of the batched ones", values)

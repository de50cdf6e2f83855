"""C9: the model outputs logits, not probabilities (cross-entropy through a softmax output masks gradients)."""
from __future__ import annotations

import torch

from attacks.base import frozen_eval
from audit.checks.validity.base import FAIL, PASS, Probe, ValidityCheck, ValidityResult


class Logits(ValidityCheck):
    id, name = "C9", "logits, not probabilities"

    def evaluate(self, p: Probe) -> ValidityResult:
        with frozen_eval(p.model), torch.no_grad():
            z = p.model(p.x).float()
        simplex = bool((z >= -1e-6).all() and torch.allclose(z.sum(1), torch.ones(z.shape[0], device=z.device),
                                                             atol=1e-3))
        if simplex:
            return self.result(FAIL, "every output row is a probability vector: the model ends in softmax, so "
                               "cross-entropy attacks see squashed gradients and robust accuracy is overstated; "
                               "return logits", {"probability_rows": z.shape[0]})
        return self.result(PASS, "outputs are not a probability simplex (logits)")

"""Per-example attack objectives on logits (to be maximised): cross-entropy and the DLR losses of Croce & Hein
(2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks",
arXiv:2003.01690, section 4).

DLR is invariant to shifting and rescaling the logits, so a model whose logits are scaled up to saturate the
softmax (one way gradients get masked) does not fool it. It needs at least 3 classes (targeted: 4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ce(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    if target is not None:
        return -F.cross_entropy(logits, target, reduction="none")
    return F.cross_entropy(logits, y, reduction="none")


def dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3); targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)."""
    z_sorted, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if target is not None:
        z_t = logits.gather(1, target[:, None]).squeeze(1)
        return -(z_y - z_t) / (z_sorted[:, 0] - 0.5 * (z_sorted[:, 2] + z_sorted[:, 3]) + 1e-12)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return -(z_y - other) / (z_sorted[:, 0] - z_sorted[:, 2] + 1e-12)


LOSSES = {"ce": ce, "dlr": dlr}
MIN_CLASSES = {"ce": 2, "dlr": 3}

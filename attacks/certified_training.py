"""Certified training with interval bound propagation (Gowal et al. 2018, "On the effectiveness of interval bound
propagation for training verifiably robust models", section 3.2).

The loss of a batch mixes the ordinary cross-entropy with the cross-entropy of the *worst-case logits* over the
threat ball, as bounded by IBP (attacks/ibp.py): the true logit at its lower bound, every other logit at its upper
bound (eq. 8). The second term is an upper bound of the worst-case cross-entropy, so driving it down makes the
margins IBP proves positive:

    L = kappa * CE(f(x), y) + (1 - kappa) * CE(z_worst(x, eps_t), y)

Both ``eps_t`` and ``kappa`` follow a ramp: ``eps_t`` grows linearly from 0 to the training eps over the recipe's
warm-up (attacks/recipes.py ``eps_factor``; the paper ramps over the first epochs), while ``kappa`` falls from 1 to
``KAPPA_END`` (0.5 in the paper) over the same steps. The bounds are computed through the model's own modules, so
the gradient reaches every weight, through both the centre and the radius (``|W| r``) of each layer's box.

Models: what attacks/bound_graph.py traces (Linear, Conv, ReLU, pooling, Flatten, residual additions, constant
normalisation) except BatchNorm and Dropout, whose training-mode behaviour (batch statistics, random masks) the
interval arithmetic of the traced graph does not follow, and trained parameters outside Linear and Conv layers
(read once when traced); :func:`training_graph` refuses them by name. Linf balls only: the audit refuses "ibp"
under an L2 threat (its box would bound a far larger set than the ball).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from attacks.base import frozen_eval
from attacks.bound_graph import BoundGraph, NotCertifiable, traced
from attacks.ibp import input_box, propagate, worst_case_logits

KAPPA_END = 0.5     # the weight of the clean cross-entropy once the ramp is over (Gowal et al. 2018)
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)   # whose weights the bound graph reads live
TRAIN_MODE_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)


def training_graph(model: nn.Module, probe: torch.Tensor) -> BoundGraph:
    """The model's bound graph for IBP training; :class:`NotCertifiable` naming the first layer it cannot train."""
    for name, m in model.named_modules():
        if isinstance(m, TRAIN_MODE_LAYERS):
            raise NotCertifiable(f"not trainable with IBP: {name} ({type(m).__name__} behaves differently in "
                                 f"training; remove it or use method 'pgd')")
        if not isinstance(m, WEIGHT_LAYERS):
            own = [p for p, t in m.named_parameters(recurse=False) if t.requires_grad]
            if own:  # a trained constant (x / scale) is read once at trace time: its bound would go stale
                raise NotCertifiable(f"not trainable with IBP: parameter {name + '.' if name else ''}{own[0]} "
                                     f"outside a Linear or Conv layer")
    with frozen_eval(model):
        return traced(model, probe)


def kappa(eps_factor: float) -> float:
    """The clean cross-entropy's weight at a point of the ramp (``eps_factor`` 0 -> 1)."""
    return 1.0 - (1.0 - KAPPA_END) * eps_factor


def ibp_loss(model: nn.Module, graph: BoundGraph, x: torch.Tensor, y: torch.Tensor, eps: float, clip: tuple,
             eps_factor: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """The mixed loss of one batch (mean over the batch); the model should be in train mode."""
    k = kappa(eps_factor)
    clean = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
    if eps <= 0 or k >= 1.0:
        return clean
    lo, hi = input_box(x, eps, clip)
    out_lo, out_hi = propagate(graph, lo, hi)[graph.output]
    robust = F.cross_entropy(worst_case_logits(out_lo, out_hi, y), y, label_smoothing=label_smoothing)
    return k * clean + (1.0 - k) * robust

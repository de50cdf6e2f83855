"""A differentiable stand-in for an int8 model (straight-through estimator), so white-box attacks can be aimed at
what a quantised deployment computes although the quantised model itself has no gradients.

The float source's Conv/Linear weights are rounded to int8 per output channel (symmetric), and each quantised
layer's input is fake-quantised per tensor and per batch (uint8, affine): the forward pass is the integer
arithmetic's, the backward pass treats rounding as the identity (Bengio et al. 2013; Athalye et al. 2018 BPDA).
For static quantisation the calibrated activation scales are approximated by per-batch ones.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

DYNAMIC_LAYERS = (nn.Linear,)
STATIC_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    lo = x.detach().amin().clamp(max=0.0)
    hi = x.detach().amax().clamp(min=0.0)
    scale = ((hi - lo) / 255.0).clamp(min=1e-8)
    zero = torch.round(-lo / scale)
    deq = (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale
    return x + (deq - x).detach()  # straight through


def _round_weight(w: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(1, w.dim()))
    scale = (w.abs().amax(dim=dims, keepdim=True) / 127.0).clamp(min=1e-12)
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def _pre_hook(_module, inputs):
    return (fake_quant_activation(inputs[0]),) + tuple(inputs[1:])


def ste_surrogate(model: nn.Module, static: bool) -> nn.Module:
    """The int8 stand-in of ``model`` (a float copy; ``model`` is not changed)."""
    m = copy.deepcopy(model).eval()
    layers = STATIC_LAYERS if static else DYNAMIC_LAYERS
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, layers):
                mod.weight.copy_(_round_weight(mod.weight))
                mod.register_forward_pre_hook(_pre_hook)
    return m

"""A faster forward-only twin of the model for the attacks' score queries: Square's proposals, FAB's success checks
and the multi-target ranking. Gradients always come from the model itself.

On a CPU, eager PyTorch runs a small CNN's forward far from the hardware bound (max-pooling with indices kept for a
backward that never comes, convolutions without the fused ReLU). ``torch.jit.trace`` + ``freeze`` +
``optimize_for_inference`` gives oneDNN convolutions with fused activations: 2.2x the eager no-grad forward of the
Madry CNN at batch 160 on one thread (bench/autoattack_ratio.py prints it). The twin is used only where it
reproduces the model: traced in eval mode on the attack's own input, then checked against the eager model at two
batch sizes (every argmax equal, logits within ``RTOL`` of their scale); a model that cannot be traced, gives other
logits, or lives on an accelerator (cuDNN is already fast there) keeps its eager forward, with the reason logged at
debug level. The twin is cached per model and input shape and rebuilt when a parameter or buffer changes in place.
"""
from __future__ import annotations

import logging
import warnings
import weakref
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)
RTOL = 1e-4
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state_key(model: torch.nn.Module, x: torch.Tensor) -> tuple:
    tensors = list(model.parameters()) + list(model.buffers())
    return (tuple(x.shape[1:]), x.dtype, tuple((t.data_ptr(), t._version) for t in tensors))


def _trace(model: torch.nn.Module, x: torch.Tensor):
    """The frozen, inference-optimised trace of ``model`` at ``x``, or None with the reason logged."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x[:2],
                                                                                      check_trace=False)))
            for rows in (x[:1], x[:3]):
                ref, got = model(rows), traced(rows)
                scale = ref.abs().amax().clamp_min(1.0)
                if got.shape != ref.shape or not torch.equal(got.argmax(1), ref.argmax(1)) or \
                        float((got - ref).abs().amax()) > RTOL * float(scale):
                    log.debug("the traced forward differs from the model's; attacks query the model itself")
                    return None
        return traced
    except Exception as exc:  # any model torch.jit cannot trace keeps its eager forward
        log.debug("the model cannot be traced for fast queries (%s); attacks query it directly", exc)
        return None


def scorer(model: torch.nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function ``rows -> logits`` for forward-only queries of ``model`` on inputs shaped like ``x``: the fast
    twin where it is available and agrees, else the model. Call it under ``frozen_eval`` and ``no_grad``."""
    if x.device.type != "cpu" or x.dim() != 4 or x.shape[0] == 0 or torch.is_autocast_enabled("cpu"):
        return model
    key = _state_key(model, x)
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model.clear()  # an older state of the weights: its trace is stale
        per_model[key] = _trace(model, x if x.shape[0] >= 3 else x[:1].repeat(3, *([1] * (x.dim() - 1))))
    traced = per_model[key]
    return model if traced is None else traced


def prefers_channels_last(model: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether the attacks' passes should run with ``model`` and 4-d inputs in channels-last memory format: on a
    CPU, for a model with 2-d convolutions. oneDNN's blocked convolutions and max-pooling make forward+backward 1.2x
    faster on the Madry CNN and 1.3x on the demo's SmallCNN at one thread (bench/autoattack_ratio.py). A fixed rule,
    not a timing, so that a rerun (or another shard) takes the same layout and gives the same bits."""
    return x.device.type == "cpu" and x.dim() == 4 and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())

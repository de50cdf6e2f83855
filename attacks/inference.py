"""A faster forward-only twin of the model for the attacks' score queries: Square's proposals, FAB's success checks
and the multi-target ranking. Gradients always come from the model itself; and a point counts as broken only once
the model itself misclassifies it (each attack confirms, and the audit's grid judges with the model).

On a CPU, eager PyTorch runs a small CNN's forward far from the hardware bound (max-pooling with indices kept for a
backward that never comes, convolutions without the fused ReLU). ``torch.jit.trace`` + ``freeze`` +
``optimize_for_inference`` gives oneDNN convolutions with fused activations: 2.2x the eager no-grad forward of the
Madry CNN at batch 160 on one thread (bench/autoattack_ratio.py prints it). The twin is used only where it
reproduces the model: traced in eval mode on the attack's own input, checked against the model at two batch sizes
when built and again on two rows of every input it is asked for (a weight edited in place, even through ``.data``,
or a plain attribute the trace baked in, makes it rebuilt), every argmax equal and logits within ``RTOL`` of their
scale. A model that cannot be traced, gives other logits, has forward pre-hooks, or lives on an accelerator (cuDNN
is already fast there) keeps its eager forward, with the reason logged at debug level. The model's own forward
hooks (the audit's pass counter and heartbeat) are taken off for the trace and called on every query of the twin.

``prefers_channels_last`` is the attack grid's layout rule: channels-last on a CPU for a model with 2-d
convolutions that runs in it (probed once per model: a model that flattens with ``.view`` cannot).
"""
from __future__ import annotations

import contextlib
import logging
import warnings
import weakref

import torch

from attacks.base import frozen_eval, to_memory_format

log = logging.getLogger(__name__)
RTOL = 1e-4
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LAYOUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Twin:
    """The traced forward, calling the model's own forward hooks on each query as the model would."""

    def __init__(self, model: torch.nn.Module, traced):
        self.model, self.traced = model, traced

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        out = self.traced(rows)
        for hook in list(self.model._forward_hooks.values()):
            replaced = hook(self.model, (rows,), out)
            out = out if replaced is None else replaced
        return out


@contextlib.contextmanager
def _hooks_off(model: torch.nn.Module):
    """The model's own forward and backward hooks removed while inside (torch.jit refuses backward hooks)."""
    saved = [(d, dict(d)) for d in (model._forward_hooks, model._backward_hooks)]
    for d, _ in saved:
        d.clear()
    try:
        yield
    finally:
        for d, kept in saved:
            d.update(kept)


def _agrees(model, twin, rows: torch.Tensor) -> bool:
    ref, got = model(rows), twin(rows)
    scale = ref.abs().amax().clamp_min(1.0)
    return got.shape == ref.shape and torch.equal(got.argmax(1), ref.argmax(1)) and \
        float((got - ref).abs().amax()) <= RTOL * float(scale)


def _trace(model: torch.nn.Module, x: torch.Tensor):
    """The frozen, inference-optimised twin of ``model`` at ``x``, or None with the reason logged."""
    if model._forward_pre_hooks or getattr(model, "_forward_hooks_with_kwargs", None):
        return None  # a pre-hook may change the input: the trace would not see it
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _hooks_off(model):
                traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x[:2],
                                                                                          check_trace=False)))
            twin = _Twin(model, traced)
            if not all(_agrees(model, twin, rows) for rows in (x[:1], x[:3])):
                log.debug("the traced forward differs from the model's; attacks query the model itself")
                return None
        return twin
    except Exception as exc:  # any model torch.jit cannot trace keeps its eager forward
        log.debug("the model cannot be traced for fast queries (%s); attacks query it directly", exc)
        return None


def scorer(model: torch.nn.Module, x: torch.Tensor):
    """A function ``rows -> logits`` for forward-only queries of ``model`` on inputs shaped like ``x``: the fast
    twin where it is available and agrees with the model on ``x``, else the model. Call it under ``frozen_eval``
    and ``no_grad``."""
    if x.device.type != "cpu" or x.dim() != 4 or x.shape[0] == 0 or torch.is_autocast_enabled("cpu"):
        return model
    example = x if x.shape[0] >= 3 else x[:1].repeat(3, *([1] * (x.dim() - 1)))
    key = (tuple(x.shape[1:]), x.dtype)
    per_model = _CACHE.setdefault(model, {})
    twin = per_model.get(key)
    if twin is not None:
        with torch.no_grad():
            fresh = _agrees(model, twin, example[:2])
        if not fresh:  # the weights (or a baked-in attribute) changed since the trace
            twin = None
    if twin is None:
        twin = per_model[key] = _trace(model, example)
    return model if twin is None else twin


def prefers_channels_last(model: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether the attacks' passes should run with ``model`` and 4-d inputs in channels-last memory format: on a
    CPU, for a model with 2-d convolutions that gives the same logits and input gradient in that layout (probed
    once per model and input shape on two rows). oneDNN's blocked convolutions and max-pooling make
    forward+backward 1.2x faster on the Madry CNN and 1.3x on the demo's SmallCNN at one thread. A fixed rule, not a
    timing, so that a rerun (or another shard) takes the same layout and gives the same bits."""
    if x.device.type != "cpu" or x.dim() != 4 or x.shape[0] == 0 or \
            not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return False
    key = tuple(x.shape[1:])
    per_model = _LAYOUT.setdefault(model, {})
    if key not in per_model:
        per_model[key] = _same_in_channels_last(model, x[:2])
    return per_model[key]


def _grad_and_logits(model, rows):
    r = rows.detach().requires_grad_(True)
    logits = model(r)
    (g,) = torch.autograd.grad(logits.sum(), r)
    return logits.detach(), g


def _same_in_channels_last(model: torch.nn.Module, rows: torch.Tensor) -> bool:
    try:
        with frozen_eval(model):
            ref = _grad_and_logits(model, rows.contiguous())
            to_memory_format(model, torch.channels_last)
            try:
                got = _grad_and_logits(model, rows.contiguous(memory_format=torch.channels_last))
            finally:
                to_memory_format(model, torch.contiguous_format)
        return all(torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().amax().clamp_min(1.0)))
                   for a, b in zip(ref, got, strict=True))
    except Exception as exc:  # e.g. a model that flattens with .view: it keeps the default layout
        log.debug("the model does not run in channels-last (%s); attacks keep the default layout", exc)
        return False

"""Penultimate-layer embeddings of a classifier: the input of its last ``nn.Linear`` (captured with a forward
pre-hook), or ``model.features(x)`` when the model defines it. Used by the leakage and poisoning detectors."""
from __future__ import annotations

import torch

from attacks.base import frozen_eval
from audit.rows import batches


def _last_linear(model: torch.nn.Module) -> torch.nn.Module | None:
    last = None
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            last = m
    return last


def train_embedding(ctx):
    """The baseline's penultimate embeddings of the training split as a numpy array (cached per run), or None."""
    def compute():
        e = penultimate(ctx.variants["baseline"].model, ctx.data.x_train, device=ctx.device)
        return None if e is None else e.numpy()
    return ctx.cached(("train_embedding", "baseline"), compute)


def test_embedding(ctx):
    """The baseline's penultimate embeddings of the test split as a numpy array (cached per run), or None."""
    def compute():
        e = penultimate(ctx.variants["baseline"].model, ctx.data.x_test, device=ctx.device)
        return None if e is None else e.numpy()
    return ctx.cached(("test_embedding", "baseline"), compute)


def embedding_unavailable(ctx) -> str:
    """Why the baseline's embeddings cannot be had ('' when they can): the skip reason of the checks that use them."""
    if "baseline" not in ctx.variants:
        return "no baseline model to embed the data with"
    if train_embedding(ctx) is None:
        return "the model has no final nn.Linear layer to read embeddings from"
    return ""


@torch.no_grad()
def penultimate(model: torch.nn.Module, x, *, device: torch.device, batch_size: int = 1024) -> torch.Tensor | None:
    """(N, d) float32 CPU embeddings of the rows of ``x`` (tensor or lazy rows), or None if none can be found."""
    layer = _last_linear(model)
    if layer is None:
        return None
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0].detach().flatten(1).float().cpu()))
    out = []
    try:
        with frozen_eval(model):
            for _, xb in batches(x, batch_size):
                captured.clear()
                model(xb.to(device))
                if not captured:
                    return None
                out.append(captured[-1])
    finally:
        handle.remove()
    return torch.cat(out) if out else None

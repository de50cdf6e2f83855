"""Penultimate-layer embeddings of a classifier: the input of its last ``nn.Linear`` (captured with a forward
pre-hook). Used by the leakage, Datalab, test-outlier and poisoning checks (through the context, computed once)."""
from __future__ import annotations

import torch

from attacks.base import frozen_eval
from audit.data.rows import batches


def last_linear(model: torch.nn.Module) -> torch.nn.Module | None:
    last = None
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            last = m
    return last


@torch.no_grad()
def penultimate(model: torch.nn.Module, x, *, device: torch.device, batch_size: int = 1024) -> torch.Tensor | None:
    """(N, d) float32 CPU embeddings of the rows of ``x`` (tensor or lazy rows), or None if none can be found."""
    layer = last_linear(model)
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

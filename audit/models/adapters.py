"""Adapters between the audited input domain and the user's model: input normalisation inside the differentiated
graph (so attacks and eps stay in input units), logits out of output objects (Hugging Face ``.logits``, tuples,
dicts), and a loaded ``torch.export`` program as an ``nn.Module``."""
from __future__ import annotations

import torch
from torch import nn


class InputAffine(nn.Module):
    """``model(x * scale + shift)``: the preprocessing between the audited input domain and the model.

    Per-channel normalisation (``scale = 1/std``, ``shift = -mean/std``) or tabular raw units (``scale = std``,
    ``shift = mean``) live here, inside the differentiated graph, so attacks and eps stay in input units.
    """

    model: nn.Module
    scale: torch.Tensor  # buffers, registered in __init__
    shift: torch.Tensor

    def __init__(self, model: nn.Module, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("scale", scale.float())
        self.register_buffer("shift", shift.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.scale + self.shift)


def looks_like_probabilities(out: torch.Tensor) -> bool:
    """Every output row non-negative and summing to 1: a softmax head, not logits."""
    return bool((out >= 0).all()) and bool(((out.sum(1) - 1).abs() < 1e-3).all())


def _logits_of(_module, _inputs, output):
    """Forward hook: the logits tensor out of whatever the model returned (None keeps a tensor as it is)."""
    if isinstance(output, torch.Tensor):
        return None
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, dict) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None  # left to the pre-flight, which names what came back


def returns_logits(model: nn.Module) -> nn.Module:
    """``model`` with a forward hook that hands on only the logits (transformers' output objects with ``.logits``,
    tuples and dicts); the module, its state-dict keys and its parameters are unchanged. Idempotent."""
    if not getattr(model, "_advaudit_logits", False) and not isinstance(model, torch.jit.ScriptModule):
        model.register_forward_hook(_logits_of)
        object.__setattr__(model, "_advaudit_logits", True)
    return model


class ExportedProgram(nn.Module):
    """A loaded ``torch.export`` program as an nn.Module whose train/eval calls are no-ops.

    Exported graphs are frozen in the mode they were captured in and refuse ``eval()``; the attacks' mode guard
    calls it, so the graph is held outside the child registry with parameters and device moves delegated to it.
    """

    graph: nn.Module

    def __init__(self, graph: nn.Module):
        super().__init__()
        object.__setattr__(self, "graph", graph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)

    def parameters(self, recurse: bool = True):
        return self.graph.parameters(recurse)

    def named_parameters(self, *args, **kwargs):
        return self.graph.named_parameters(*args, **kwargs)

    def _apply(self, fn, recurse=True):
        self.graph._apply(fn)
        return self

    def train(self, mode: bool = True):
        object.__setattr__(self, "training", mode)
        return self


def input_wrapper(model: nn.Module, input_cfg, kind: str, input_shape: tuple[int, ...],
                  preprocessing: dict) -> nn.Module:
    """Wrap ``model`` with the declared preprocessing so attacks and eps stay in input units (or return it); its
    output objects reduced to logits."""
    model = returns_logits(model)
    if kind == "image" and input_cfg.mean:
        shape = (-1,) + (1,) * (len(input_shape) - 1)
        std, mean = torch.tensor(input_cfg.std).view(shape), torch.tensor(input_cfg.mean).view(shape)
        return InputAffine(model, 1.0 / std, -mean / std)
    if kind == "tabular" and input_cfg.feature_units == "raw":
        return InputAffine(model, torch.tensor(preprocessing["std"]), torch.tensor(preprocessing["mean"]))
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The user's own module inside advaudit's wrappers (the input affine map, an exported program's holder)."""
    inner = model.model if isinstance(model, InputAffine) else model
    return inner.graph if isinstance(inner, ExportedProgram) else inner

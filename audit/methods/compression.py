"""Deployment transforms of a trained model: int8 quantisation (dynamic, static), half-precision casts and global
magnitude pruning, and what a deployment costs (size on disk, sparsity, latency).

Quantisation uses torchao (``pip install 'advaudit[compress]'``) for dynamic int8 when it is installed, else
``torch.ao.quantization`` (deprecated in torch 2.x but present in 2.13, and the only one of the two with static
int8 graph-mode quantisation for CPU inference); the backend used is recorded with every deployment.
"""
from __future__ import annotations

import copy
import importlib.util
import io
import statistics
import time

import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class Cast(nn.Module):
    """A model run in ``dtype``: inputs cast in, logits cast back to float32 (differentiable)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model.to(dtype), dtype

    def forward(self, x):
        return self.model(x.to(self.dtype)).float()


def dynamic_int8(model: nn.Module) -> tuple[nn.Module, str]:
    """int8 weights, activations quantised per batch (Linear layers); runs on the CPU."""
    m = copy.deepcopy(model).cpu().eval()
    if importlib.util.find_spec("torchao") is not None:
        import torchao
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
        quantize_(m, Int8DynamicActivationInt8WeightConfig())
        return m, f"torchao {torchao.__version__} Int8DynamicActivationInt8WeightConfig"
    from torch.ao.quantization import quantize_dynamic
    return quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8), \
        "torch.ao.quantization.quantize_dynamic (torchao not installed)"


def static_int8(model: nn.Module, calibration: torch.Tensor) -> tuple[nn.Module, str]:
    """int8 weights and activations, scales calibrated on ``calibration`` rows (FX graph mode, x86 backend)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    m = copy.deepcopy(model).cpu().eval()
    prepared = prepare_fx(m, get_default_qconfig_mapping("x86"), example_inputs=(calibration[:1].cpu(),))
    with torch.no_grad():
        for i in range(0, calibration.shape[0], 256):
            prepared(calibration[i:i + 256].cpu())
    return convert_fx(prepared), "torch.ao.quantization FX prepare/convert, x86 qconfig"


def cast(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    return Cast(copy.deepcopy(model), dtype).eval()


def prune_global(model: nn.Module, sparsity: float, finetune=None) -> nn.Module:
    """Global L1 magnitude pruning of every Conv/Linear weight to ``sparsity``; ``finetune(model)`` trains with
    the mask kept (pruning re-parametrisation), which is then made permanent."""
    m = copy.deepcopy(model)
    params = [(mod, "weight") for mod in m.modules() if isinstance(mod, PRUNABLE)]
    if not params:
        raise ValueError("the model has no Conv or Linear weights to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(sparsity))
    if finetune is not None:
        finetune(m)
    for mod, name in params:
        prune.remove(mod, name)
    return m.eval()


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)


def size_bytes(model: nn.Module) -> int:
    """Bytes of the serialised state dict (what ships)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def sparsity(model: nn.Module) -> float:
    """Share of exactly-zero weights over every weight tensor (quantised ones by their integer values)."""
    zeros = total = 0
    for key, value in model.state_dict().items():
        for t in _tensors(value):
            if "weight" not in key and "packed" not in key:
                continue
            if t.is_quantized:
                t = t.int_repr() - (t.q_zero_point() if t.qscheme() in (torch.per_tensor_affine,
                                                                         torch.per_tensor_symmetric) else 0)
            elif not t.is_floating_point():
                continue
            zeros += int((t == 0).sum())
            total += t.numel()
    return zeros / total if total else 0.0


def latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 7) -> float:
    """Median wall milliseconds of one forward pass on the batch ``x`` (after a warm-up), on x's device."""
    def sync():
        if x.device.type == "cuda":
            torch.cuda.synchronize()
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            model(x)
            sync()
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)

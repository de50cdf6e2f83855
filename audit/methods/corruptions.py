"""Common corruptions at five severities (after Hendrycks & Dietterich 2019, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations"), for images in their clip range, and feature noise and
dropout for standardised tabular features. Each corruption maps (x, severity, generator) -> x' in the same range.
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from attacks.base import frozen_eval

SEVERITIES = (1, 2, 3, 4, 5)


def _unit(x, lo, hi):
    return (x - lo) / (hi - lo)


def _back(u, lo, hi):
    return (u.clamp(0, 1) * (hi - lo) + lo)


def gaussian_noise(u, s, g):
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[s - 1]
    return u + sigma * torch.randn(u.shape, generator=g)


def impulse_noise(u, s, g):
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[s - 1]
    r = torch.rand(u.shape, generator=g)
    return torch.where(r < amount / 2, torch.zeros_like(u), torch.where(r < amount, torch.ones_like(u), u))


def gaussian_blur(u, s, g):
    sigma = (0.4, 0.6, 0.8, 1.0, 1.5)[s - 1]
    radius = max(1, int(round(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=u.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = u.shape[1]
    x = F.pad(u, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def contrast(u, s, g):
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[s - 1]
    mean = u.mean(dim=(1, 2, 3), keepdim=True)
    return (u - mean) * c + mean


def brightness(u, s, g):
    return u + (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1]


def pixelate(u, s, g):
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]
    h, w = u.shape[-2:]
    small = F.interpolate(u, size=(max(1, int(h * factor)), max(1, int(w * factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


def jpeg(u, s, g):
    from PIL import Image
    quality = (25, 18, 15, 10, 7)[s - 1]
    out = torch.empty_like(u)
    for i, img in enumerate(u):
        arr = (img.clamp(0, 1) * 255).round().byte().numpy()
        pil = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255.0
        out[i] = torch.from_numpy(dec[None] if dec.ndim == 2 else dec.transpose(2, 0, 1))
    return out


IMAGE = {"gaussian_noise": gaussian_noise, "impulse_noise": impulse_noise, "gaussian_blur": gaussian_blur,
         "contrast": contrast, "brightness": brightness, "pixelate": pixelate, "jpeg": jpeg}


def feature_noise(x, s, g):
    return x + (0.1, 0.2, 0.3, 0.5, 1.0)[s - 1] * torch.randn(x.shape, generator=g)


def feature_dropout(x, s, g):
    p = (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1]
    return torch.where(torch.rand(x.shape, generator=g) < p, torch.zeros_like(x), x)  # 0 = the train mean


TABULAR = {"feature_noise": feature_noise, "feature_dropout": feature_dropout}


def corrupt(name: str, x: torch.Tensor, severity: int, clip, kind: str, generator: torch.Generator):
    """Corrupt a CPU batch; images are corrupted in [0, 1] units of the clip range and mapped back."""
    x = x.float().cpu()
    if kind == "image":
        lo, hi = float(clip[0]), float(clip[1])
        return _back(IMAGE[name](_unit(x, lo, hi), severity, generator), lo, hi)
    out = TABULAR[name](x, severity, generator)
    if isinstance(clip[0], torch.Tensor):
        return torch.maximum(torch.minimum(out, clip[1]), clip[0])
    return out


def corruption_errors(model, x, y, *, clip, kind: str, seed: int, device, batch_size: int = 512) -> dict:
    """(corruption, severity) -> error rate of ``model`` on the corrupted rows of ``x`` (seeded: the same
    corruptions for every model given the same seed)."""
    names = IMAGE if kind == "image" else TABULAR
    out = {}
    for ci, name in enumerate(names):
        for s in SEVERITIES:
            g = torch.Generator().manual_seed(seed * 1000 + ci * 10 + s)
            wrong = 0
            for i in range(0, x.shape[0], batch_size):
                xb = corrupt(name, x[i:i + batch_size], s, clip, kind, g)
                with frozen_eval(model), torch.no_grad():
                    pred = model(xb.to(device)).argmax(1).cpu()
                wrong += int((pred != y[i:i + batch_size]).sum())
            out[(name, s)] = wrong / x.shape[0]
    return out

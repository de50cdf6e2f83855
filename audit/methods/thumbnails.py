"""Small inline PNG thumbnails (base64) of image rows, for the report: self-contained, no files, no network."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch


def thumbnail(x: torch.Tensor, clip: tuple[float, float], size: int = 64) -> str:
    """Base64 PNG of one (C, H, W) image in the clip range, upscaled (nearest) to at least ``size`` pixels."""
    from PIL import Image
    lo, hi = float(clip[0]), float(clip[1])
    a = ((x.detach().float().cpu().numpy() - lo) / max(hi - lo, 1e-12)).clip(0, 1)
    a = (a * 255).round().astype(np.uint8)
    img = Image.fromarray(a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1))
    scale = max(1, size // max(img.size))
    img = img.resize((img.size[0] * scale, img.size[1] * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")

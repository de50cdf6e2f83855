"""Shifted inputs for out-of-distribution detection, and how well a score separates them.

Images: uniform noise in the clip range and pixel-shuffled test images (same intensity histogram, no structure);
tabular: uniform values inside each feature's bounds and features shuffled across rows (same marginals, broken
dependence); plus the user's own OOD inputs when given. Scores are higher for in-distribution inputs.
"""
from __future__ import annotations

import numpy as np
import torch


def shifted_sets(x: torch.Tensor, clip, kind: str, seed: int, user: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    n = x.shape[0]
    x = x.float()
    g = torch.Generator().manual_seed(seed)
    lo, hi = clip
    lo = lo if isinstance(lo, torch.Tensor) else torch.tensor(float(lo))
    hi = hi if isinstance(hi, torch.Tensor) else torch.tensor(float(hi))
    uniform = lo + (hi - lo) * torch.rand(x.shape, generator=g)
    flat = x.flatten(1)
    if kind == "image":
        perm = torch.stack([torch.randperm(flat.shape[1], generator=g) for _ in range(n)])
        sets = {"uniform_noise": uniform, "pixel_shuffled": torch.gather(flat, 1, perm).view_as(x)}
    else:
        cols = [flat[torch.randperm(n, generator=g), j] for j in range(flat.shape[1])]
        sets = {"uniform_in_bounds": uniform, "feature_shuffled": torch.stack(cols, 1).view_as(x)}
    if user is not None:
        sets["user_supplied"] = user
    return sets


def auroc_fpr95(inside: np.ndarray, outside: np.ndarray) -> tuple[float, float]:
    """AUROC of telling inside from outside by the score, and the share of outside inputs kept at the threshold
    that keeps 95% of the inside ones."""
    from sklearn.metrics import roc_auc_score
    y = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    auroc = float(roc_auc_score(y, np.r_[inside, outside]))
    threshold = np.quantile(inside, 0.05)
    return auroc, float((outside >= threshold).mean())

"""Adversarial examples for the report's gallery: the attack grid's own adversarial inputs, kept while it runs.

While the grid runs (audit/methods/evaluation.py) one :class:`ExamplePool` per shard keeps, at every eps, a bounded
set of the perturbations that broke clean-correct test points: the most confident mistakes, a few per true class
(:func:`choose`), each point once (the most confident of the attacks that broke it). Images are kept shrunk to at
most ``SIDE`` pixels a side by area averaging, which is linear: the shrunk original plus the shrunk perturbation is
the shrunk adversarial input, so nothing but the delta needs keeping. For flat (tabular) inputs the pool also sums
|delta| per feature over every break, for "the features the attack moved most". The robustness check picks the
gallery from the merged pools and renders it (:func:`panels`, :func:`moved_most`).
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

SIDE = 64             # the longest side an image is kept and shown at (larger inputs are shrunk)
POOL = 32             # adversarial inputs kept per eps and shard
POOL_PER_CLASS = 4    # ... of which at most this many per true class before the most confident fill the rest


@dataclass(frozen=True)
class Adversarial:
    """One clean-correct test point an attack broke: its row, true and adversarial class, the adversarial class's
    softmax probability, the attack, ||delta|| in the threat norm at full resolution, and delta (shrunk)."""

    row: int
    label: int
    pred: int
    confidence: float
    attack: str
    norm: float
    delta: torch.Tensor | None = None


@dataclass(frozen=True)
class Kept:
    """What one eps kept: adversarial inputs, and for flat inputs sum |delta| per feature over ``moved_n`` breaks."""

    examples: tuple[Adversarial, ...] = ()
    moved_sum: np.ndarray | None = None
    moved_n: int = 0


def choose(items, size: int, per_class: int) -> list[Adversarial]:
    """The ``size`` most confident mistakes, one per row, at most ``per_class`` per true class while others remain
    (then the most confident of the rest); most confident first, ties by row."""
    best: dict[int, Adversarial] = {}
    for a in sorted(items, key=lambda a: (-a.confidence, a.row)):
        best.setdefault(a.row, a)
    ranked = list(best.values())
    taken: list[Adversarial] = []
    counts: Counter = Counter()
    for a in ranked:
        if len(taken) == size:
            break
        if counts[a.label] < per_class:
            taken.append(a)
            counts[a.label] += 1
    rows = {a.row for a in taken}
    taken += [a for a in ranked if a.row not in rows][:size - len(taken)]
    return sorted(taken, key=lambda a: (-a.confidence, a.row))


def shrink(x: torch.Tensor) -> torch.Tensor:
    """One input as a small float32 CPU copy: a (C, H, W) image area-averaged to at most ``SIDE`` pixels a side."""
    x = x.detach().to("cpu", torch.float32)
    if x.dim() == 3 and max(x.shape[1:]) > SIDE:
        f = math.ceil(max(x.shape[1:]) / SIDE)
        size = (max(1, round(x.shape[1] / f)), max(1, round(x.shape[2] / f)))
        return torch.nn.functional.adaptive_avg_pool2d(x[None], size)[0]
    return x.clone()


class ExamplePool:
    """The adversarial inputs one grid shard keeps (rows ``offset`` + local index; ``clean_ok``: the shard's
    clean-correct mask, since a clean error is no adversarial example)."""

    def __init__(self, clean_ok: np.ndarray, offset: int):
        self.clean_ok, self.offset = clean_ok, offset
        self.kept: dict[float, Kept] = {}

    def add(self, job: tuple, rows: torch.Tensor, y: torch.Tensor, logits: torch.Tensor, delta: torch.Tensor,
            norms: torch.Tensor) -> None:
        """One attacked batch of ``job`` (attack, eps): local ``rows``, labels, adversarial logits, x_adv - x and
        its norms."""
        attack, eps = job
        delta = delta.detach()
        conf, pred = torch.softmax(logits.detach().float(), 1).max(1)
        conf, pred, y, norms = conf.cpu(), pred.cpu(), y.cpu(), norms.detach().float().cpu()
        local = rows.numpy()
        finite = (torch.isfinite(conf) & torch.isfinite(norms)
                  & torch.isfinite(delta.flatten(1)).all(1).cpu()).numpy()  # a NaN never reaches results.json
        idx = np.flatnonzero((pred != y).numpy() & self.clean_ok[local] & finite)
        if not len(idx):
            return
        old = self.kept.get(eps, Kept())
        moved_sum, moved_n = old.moved_sum, old.moved_n
        if delta.dim() == 2:
            s = delta[torch.from_numpy(idx).to(delta.device)].abs().sum(0).double().cpu().numpy()
            moved_sum, moved_n = (s if moved_sum is None else moved_sum + s), moved_n + len(idx)
        new = {self.offset + int(local[i]): int(i) for i in idx}
        light = [Adversarial(row=r, label=int(y[i]), pred=int(pred[i]), confidence=float(conf[i]), attack=attack,
                             norm=float(norms[i])) for r, i in new.items()]
        picked = choose(list(old.examples) + light, POOL, POOL_PER_CLASS)
        examples = tuple(a if a.delta is not None else dataclasses.replace(a, delta=shrink(delta[new[a.row]]))
                         for a in picked)
        self.kept[eps] = Kept(examples, moved_sum, moved_n)

    def export(self) -> dict[float, Kept]:
        return dict(self.kept)


def merge(parts) -> dict[float, Kept]:
    """The shards' pools (each eps -> Kept) as one."""
    out: dict[float, Kept] = {}
    for part in parts:
        for eps, k in part.items():
            o = out.get(eps, Kept())
            s = k.moved_sum if o.moved_sum is None else (o.moved_sum if k.moved_sum is None
                                                         else o.moved_sum + k.moved_sum)
            out[eps] = Kept(tuple(choose(o.examples + k.examples, POOL, POOL_PER_CLASS)), s, o.moved_n + k.moved_n)
    return out


def panels(originals: torch.Tensor, deltas: torch.Tensor, clip) -> tuple[list[tuple[str, str, str]], float]:
    """Base64 PNGs (original, adversarial, perturbation amplified) of shrunk (k, C, H, W) originals and deltas, at
    their own size, and the amplification: one factor for all, so the largest change spans half the range from
    mid-grey (unchanged) to white or black."""
    from audit.methods.thumbnails import thumbnail
    lo, hi = float(clip[0]), float(clip[1])
    biggest = float(deltas.abs().max()) if deltas.numel() else 0.0
    k = 1.0 / (2 * biggest) if biggest > 0 else 0.0
    out = []
    for x, d in zip(originals, deltas, strict=True):
        adv = (x + d).clamp(lo, hi)
        out.append((thumbnail(x, (lo, hi), size=1), thumbnail(adv, (lo, hi), size=1),
                    thumbnail((0.5 + d * k).clamp(0, 1), (0.0, 1.0), size=1)))
    return out, (hi - lo) * k


def moved_most(kept: Kept, names, std, top: int = 10) -> list[tuple[str, float, float | None]]:
    """(feature, mean |delta| in the model's input units, the same in the data's units when ``std`` (the
    standardisation's per-feature std) is known) for the ``top`` features the breaks moved most."""
    if kept.moved_sum is None or not kept.moved_n:
        return []
    mean = kept.moved_sum / kept.moved_n
    scale = np.asarray(std, dtype=np.float64) if std is not None and len(std) == len(mean) else None
    out = []
    for j in np.argsort(-mean, kind="stable")[:top]:
        name = str(names[j]) if j < len(names) else f"feature {j}"
        out.append((name, float(mean[j]), float(mean[j] * scale[j]) if scale is not None else None))
    return out

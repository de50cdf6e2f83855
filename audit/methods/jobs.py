"""The units of work an executor runs (module-level, so any process can run them), and the model recipe they
build from. Each unit seeds the global generators from its own seed (weight initialisation, dropout), so it
gives the same bits in this process or on a cluster worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attacks.base import frozen_eval
from attacks.recipes import Recipe
from attacks.training import TrainStats, train
from audit.data.rows import take
from audit.methods.seeding import seeded
from audit.models.adapters import input_wrapper
from audit.models.loading import build_from_factory

COUNTERS: list = []  # the in-process executor pushes the run record's pass counter here while a unit runs


@dataclass(frozen=True)
class ModelSpec:
    """How to build a fresh model of the audited architecture, inside the declared input preprocessing."""

    factory: str
    kwargs: dict
    base_dir: str
    input: Any
    kind: str
    input_shape: tuple
    preprocessing: dict = field(default_factory=dict)
    device: str = "cpu"

    def build(self) -> torch.nn.Module:
        base = Path(self.base_dir) if self.base_dir else None
        model = input_wrapper(build_from_factory(self.factory, dict(self.kwargs), base), self.input, self.kind,
                              self.input_shape, self.preprocessing).to(self.device)
        if COUNTERS:
            COUNTERS[-1].attach(model)
        return model


def _state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_from(model: torch.nn.Module, x, y: torch.Tensor, train_kw: dict) -> TrainStats:
    """``train`` from a unit's keywords: ``recipe`` (a Recipe), ``adversary`` and ``desc``; or, for natural
    training, the Recipe's own fields (epochs, batch_size, lr, seed, ...) in place of ``recipe``."""
    kw = dict(train_kw)
    desc, adversary = kw.pop("desc", "train"), kw.pop("adversary", None)
    recipe = kw.pop("recipe") if "recipe" in kw else Recipe(**kw)
    if "recipe" in train_kw and kw:
        raise TypeError(f"train: give settings in the recipe, not beside it: {', '.join(sorted(kw))}")
    return train(model, x, y, recipe, adversary, desc=desc)


def train_unit(spec: ModelSpec, seed: int, x, y: torch.Tensor, train_kw: dict) -> tuple[dict, TrainStats]:
    """Build under ``seed`` and train; the trained weights (on the CPU) and the training statistics."""
    with seeded(seed):
        model = spec.build()
        stats = train_from(model, x, y, train_kw)
    return _state(model), stats


def fold_unit(spec: ModelSpec, seed: int, x, y: torch.Tensor, fit: np.ndarray, held: np.ndarray,
              train_kw: dict) -> np.ndarray:
    """One K-fold fold: train on ``fit`` rows, return softmax probabilities (float64) of the ``held`` rows."""
    with seeded(seed):
        model = spec.build()
        train_from(model, take(x, fit), y[torch.from_numpy(fit)], train_kw)
    xh = take(x, held)
    with frozen_eval(model), torch.no_grad():
        bs = min(1024, int(train_kw.get("batch_size", 1024)))  # a size pre-flight probed
        out = [model(xh[i:i + bs].to(spec.device)).float().cpu() for i in range(0, xh.shape[0], bs)]
    return torch.softmax(torch.cat(out), 1).double().numpy()

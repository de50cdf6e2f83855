"""Out-of-fold probabilities from K-fold training of the audited architecture: every fold of every set of labels
(the given ones, a self-test's flipped copy) is an independent unit of work, all submitted together, each with
its fold's seeds (weight initialisation: the ``FOLD_INIT`` stream; batch order: ``FOLD_TRAIN``)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from audit.core.work import Unit
from audit.methods.jobs import ModelSpec, fold_unit
from audit.methods.label_issues import fold_assignment
from audit.methods.seeding import FOLD_INIT, FOLD_TRAIN


@dataclass(frozen=True)
class KFold:
    """The K-fold training settings: folds, epochs per fold, batch size, learning rate and the run's seed."""

    folds: int
    epochs: int
    batch_size: int
    lr: float
    seed: int


def fold_units(plan: KFold, spec: ModelSpec, x: Any, label_sets: tuple[np.ndarray, ...]) -> tuple[list, list]:
    """The units (one per fold of every label set) and, for each, (which label set, its held-out rows)."""
    units, held_rows = [], []
    for j, labels in enumerate(label_sets):
        fold_of = fold_assignment(labels, plan.folds, plan.seed)
        y = torch.from_numpy(labels)
        for k in range(plan.folds):
            fit, held = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
            kw = dict(epochs=plan.epochs, batch_size=plan.batch_size, lr=plan.lr, seed=FOLD_TRAIN.seed(plan.seed, k),
                      desc=f"fold {k + 1}/{plan.folds}")
            units.append(Unit(f"{'self-test ' if j else ''}fold {k + 1}/{plan.folds}", fold_unit,
                              (spec, FOLD_INIT.seed(plan.seed, k), x, y, fit, held, kw)))
            held_rows.append((j, held))
    return units, held_rows


def kfold_probabilities(plan: KFold, spec: ModelSpec, x: Any, num_classes: int,
                        run_units: Callable[[list], list], *label_sets: np.ndarray) -> list[np.ndarray]:
    """The out-of-fold probabilities (float64, rows x classes) for each set of labels; ``x``: the training
    inputs as the executor shares them; ``run_units``: the executor's map."""
    units, held_rows = fold_units(plan, spec, x, label_sets)
    probs = [np.zeros((len(labels), num_classes), dtype=np.float64) for labels in label_sets]
    for (j, held), p in zip(held_rows, run_units(units), strict=False):
        probs[j][held] = p
    return probs

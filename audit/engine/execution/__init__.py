"""Executors: where the independent units of an audit run (variant trainings, K-fold folds, attack-grid shards,
detector self-tests). ``local`` runs them in this process, one after the other (the default); ``ray`` sends them
to a Ray cluster. Every unit is seeded from the run's seed and its own identity, never from call order, so both
give the same bits."""
from __future__ import annotations

from audit.core.work import Executor, Unit
from audit.engine.execution.local import LocalExecutor
from audit.engine.execution.ray_cluster import RayExecutor

EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(config, recorder) -> Executor:
    """The executor named by ``config.execution`` (started: a Ray cluster is reached here, before any work)."""
    e = config.execution
    return EXECUTORS[e.executor](e, recorder, config.base_dir)


__all__ = ["EXECUTORS", "Executor", "Unit", "make_executor"]

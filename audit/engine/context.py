"""The audit context: what checks read (audit/checks/run_view.py is its contract). Built complete, in one place,
after the variants are trained: the frozen run setup (config, policy, data, device, the gated eps), model
building (audit/engine/models.py), the audited variants, the executor and the run record, and the shared results
(one class each in run_view, computed once per (class, variant) and kept here). The measurements of data-scope
checks that already ran are available to the checks that declare them in ``requires``.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from attacks.base import frozen_eval
from audit.checks.run_view import Shared, TestLogits
from audit.core.result import Measurement
from audit.core.work import Executor, Unit
from audit.engine.execution.local import LocalExecutor
from audit.engine.models import Models, Variant
from audit.engine.record import Recorder
from audit.engine.run_setup import RunSetup, pick_device

log = logging.getLogger(__name__)
__all__ = ["Context", "Prepared", "RunSetup", "Variant", "make_context", "pick_device"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """What pre-flight hands on to training: the setup, model building, the started executor, the run record."""

    setup: RunSetup
    models: Models
    executor: Executor
    recorder: Recorder


@dataclass(frozen=True, eq=False)
class Context:
    setup: RunSetup
    models: Models
    executor: Executor
    recorder: Recorder
    variants: Mapping[str, Variant]
    warnings: list[str]                       # pre-flight's and training's (stopped early), in order
    measurements: dict[str, Measurement] = field(default_factory=dict)  # "check" or "check:variant" -> what it measured
    _shared: dict = field(default_factory=dict, init=False, repr=False)

    # --- the setup, read through ------------------------------------------------------------------------------
    @property
    def config(self):
        return self.setup.config

    @property
    def policy(self):
        return self.setup.policy

    @property
    def data(self):
        return self.setup.data

    @property
    def device(self) -> torch.device:
        return self.setup.device

    @property
    def user_model(self):
        return self.setup.user_model

    @property
    def user_pred_probs(self) -> np.ndarray | None:
        return self.setup.user_pred_probs

    @property
    def gated_eps(self) -> float:
        """The eps the audit judges and headlines (audit/engine/run_setup.py ``judged_eps``)."""
        return self.setup.gated_eps

    @property
    def can_train(self) -> bool:
        return self.setup.can_train

    # --- shared results -----------------------------------------------------------------------------------------
    def get(self, kind: type[Shared], variant: str | None = None):
        """``kind``'s result for ``variant`` (None for run-wide ones), computed once per run."""
        key = (kind, variant)
        if key not in self._shared:
            stage = kind.stage_name(variant)
            if stage:
                with self.stage(stage):
                    self._shared[key] = kind.compute(self, variant)
            else:
                self._shared[key] = kind.compute(self, variant)
        return self._shared[key]

    def computed(self, kind: type[Shared], variant: str | None = None):
        """``kind``'s result for ``variant`` if some caller already asked for it, else None."""
        return self._shared.get((kind, variant))

    def clean_correct(self, variant: str) -> np.ndarray:
        """Per-test-point correctness of ``variant`` on clean inputs."""
        return (self.get(TestLogits, variant).argmax(1) == self.data.y_test).numpy()

    @torch.no_grad()
    def logits(self, model: torch.nn.Module, x, batch_size: int | None = None) -> torch.Tensor:
        batch_size = batch_size or min(1024, self.config.attacks.batch_size)  # the sizes pre-flight probed
        with frozen_eval(model):
            out = [model(x[i:i + batch_size].to(self.device)).float().cpu()
                   for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.data.num_classes)

    def measurement(self, check: str, variant: str | None = None) -> Measurement | None:
        """The measurement of a check that already ran (declare it in ``requires`` or ``after``) on ``variant``
        (None: a data-scope check), or None."""
        return self.measurements.get(check if variant is None else f"{check}:{variant}")

    # --- the run's machinery ------------------------------------------------------------------------------------
    def stage(self, name: str):
        """A timed stage of the run record (``with ctx.stage("..."):``)."""
        return self.recorder.stage(name)

    def stage_seconds(self, name: str) -> float | None:
        """The wall seconds of the run record's finished stages named ``name`` (summed), or None: none finished, or
        a stage nested in one ran on another node (a distributed executor's unit: the wall time here is not the
        work's). Read-only."""
        done = [s for s in self.recorder.stages if s is not None]
        mine = [s.seconds for s in done if s.name == name]
        if not mine or any(s.parent == name and s.node for s in done):
            return None
        return float(sum(mine))

    def run_units(self, units: list[Unit]) -> list:
        """The values of independent units of work, in order, computed by the run's executor."""
        return self.executor.map(units)

    def share(self, obj):
        """``obj`` as the executor hands it to units (stored once on a cluster)."""
        return self.executor.share(obj)


def make_context(setup: RunSetup, variants: Mapping[str, Variant] | None = None, *, executor: Executor | None = None,
                 recorder: Recorder | None = None, models: Models | None = None,
                 warnings: tuple[str, ...] = ()) -> Context:
    """The context of ``setup`` with these ``variants``, complete (an in-process executor when none is given)."""
    recorder = recorder or Recorder()
    return Context(setup=setup, models=models or Models(setup, recorder.counter),
                   executor=executor or LocalExecutor(recorder=recorder), recorder=recorder,
                   variants=dict(variants or {}), warnings=[*setup.warnings, *warnings])

"""Building models of the audited architecture: wrapping a module in the declared input preprocessing, a fresh
model from the factory, what a unit of work needs to build one elsewhere, an independent copy of a variant, and
fine-tuning with a variant's recipe. The audited variants themselves are :class:`Variant`."""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch

from attacks.training import TrainStats, train
from audit.config import DefenceConfig
from audit.engine.record import PassCounter
from audit.engine.run_setup import RunSetup
from audit.engine.variant_recipe import train_kwargs
from audit.methods.jobs import ModelSpec
from audit.methods.seeding import FINETUNE, seeded
from audit.models.adapters import input_wrapper
from audit.models.loading import build_from_factory


@dataclass
class Variant:
    """One audited model: the baseline or a defence trained with the same factory, data and budget."""

    name: str
    description: str
    model: torch.nn.Module
    defence: DefenceConfig | None
    train_stats: TrainStats | None


def wrap_model(model: torch.nn.Module, config, data, device: torch.device, counter: PassCounter) -> torch.nn.Module:
    """``model`` inside ``config``'s declared input preprocessing for ``data``, on ``device``, its passes counted."""
    wrapped = input_wrapper(model, config.input, data.kind, data.input_shape, data.preprocessing).to(device)
    counter.attach(wrapped)
    return wrapped


def factory_model(config) -> torch.nn.Module:
    """A fresh, untrained module from ``config``'s factory (not wrapped)."""
    return build_from_factory(config.model.factory, dict(config.model.kwargs), config.base_dir or None)


@dataclass(frozen=True, eq=False)
class Models:
    """The run's model building; every model it builds has its passes counted by ``counter``."""

    setup: RunSetup
    counter: PassCounter

    @property
    def can_train(self) -> bool:
        return self.setup.can_train

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` inside the declared input preprocessing, on the run's device, its passes counted."""
        return wrap_model(model, self.setup.config, self.setup.data, self.setup.device, self.counter)

    def build_model(self) -> torch.nn.Module:
        """A fresh, untrained model from the factory, wrapped in the declared input preprocessing."""
        return self.wrap(factory_model(self.setup.config))

    def spec(self) -> ModelSpec:
        """How a unit of work (on any executor) builds a fresh model of the audited architecture."""
        c, d = self.setup.config, self.setup.data
        return ModelSpec(c.model.factory, dict(c.model.kwargs), c.base_dir, c.input, d.kind, tuple(d.input_shape),
                         d.preprocessing, str(self.setup.device))

    def copy_model(self, variant: Variant) -> torch.nn.Module:
        """An independent copy of a variant's model (without the run record's hooks), to transform."""
        with self.counter.suspended():
            return copy.deepcopy(variant.model)

    def finetune(self, model: torch.nn.Module, variant: Variant, epochs: int) -> None:
        """Train ``model`` in place for ``epochs`` more with ``variant``'s recipe and adversary (no warm-up)."""
        kw = train_kwargs(self.setup, variant.name, variant.defence)
        kw["recipe"] = dataclasses.replace(kw["recipe"], epochs=epochs, warmup_epochs=0.0, select="last", holdout=0)
        kw["desc"] = f"fine-tune {variant.name}"
        with seeded(FINETUNE.seed(self.setup.config.seed)):
            train(model, self.setup.data.x_train, self.setup.data.y_train, **kw)

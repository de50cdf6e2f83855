"""The audit context: config, policy, data, device, the trained variants, and the shared intermediate results.

Checks read everything through the context. Expensive intermediates (test logits, the attack grid, embeddings,
leakage in input space, the out-of-fold label probabilities) are typed accessors computed once and shared; the
measurements of checks that already ran are available to the checks that declare them in ``requires``.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from attacks.base import frozen_eval
from attacks.training import TrainStats, train
from audit.config import AuditConfig, DefenceConfig
from audit.config.policy import Policy
from audit.core.errors import UsageError
from audit.core.metrics import same_eps
from audit.core.result import Measurement
from audit.core.work import Executor, Unit
from audit.data.splits import Splits
from audit.engine.execution.local import LocalExecutor
from audit.engine.record import Recorder
from audit.engine.variant_recipe import train_kwargs
from audit.methods.corruptions import corruption_errors
from audit.methods.evaluation import RobustnessEval, evaluate_robustness
from audit.methods.jobs import ModelSpec
from audit.methods.label_issues import find_issues
from audit.methods.leakage import Leaks, calibrated_threshold, find_leaks
from audit.methods.seeding import seeded, unit_seed
from audit.models.adapters import input_wrapper
from audit.models.embeddings import penultimate
from audit.models.loading import LoadedModel, build_from_factory

log = logging.getLogger(__name__)
FINETUNE_SEED_OFFSET = 303


@dataclass
class Variant:
    """One audited model: the baseline or a defence trained with the same factory, data and budget."""

    name: str
    description: str
    model: torch.nn.Module
    defence: DefenceConfig | None
    train_stats: TrainStats | None


def pick_device(spec: str) -> torch.device:
    if spec == "cuda" and not torch.cuda.is_available():
        raise UsageError("device: 'cuda' was asked for but no CUDA device is available")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


@dataclass
class Context:
    config: AuditConfig
    policy: Policy
    data: Splits
    device: torch.device
    user_model: LoadedModel | None = None
    variants: dict[str, Variant] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    measurements: dict[str, Measurement] = field(default_factory=dict)  # data-scope checks that already ran
    user_pred_probs: np.ndarray | None = None  # label_issues.pred_probs, read and checked at preflight
    recorder: Recorder = field(default_factory=Recorder)
    trainable: bool | None = None  # set when the model came in memory: whether a factory can rebuild it
    executor: Executor | None = None  # where units run (audit/engine/execution); in-process when not set
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.executor is None:
            self.executor = LocalExecutor(recorder=self.recorder)

    # --- models and randomness -------------------------------------------------------------------------------
    @property
    def can_train(self) -> bool:
        """Whether models of the audited architecture can be built (a factory, not only an archive)."""
        return not self.config.model.archive if self.trainable is None else self.trainable

    @contextlib.contextmanager
    def seeded(self, offset: int = 0):
        """The global generators seeded for one unit of work (weight init, dropout), restored afterwards."""
        with seeded(unit_seed(self.config.seed, offset)):
            yield

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` inside the declared input preprocessing, on the run's device, its passes counted."""
        d = self.data
        wrapped = input_wrapper(model, self.config.input, d.kind, d.input_shape, d.preprocessing).to(self.device)
        self.recorder.counter.attach(wrapped)
        return wrapped

    def stage(self, name: str):
        """A timed stage of the run record (``with ctx.stage("..."):``)."""
        return self.recorder.stage(name)

    def model_spec(self) -> ModelSpec:
        """How a unit of work (on any executor) builds a fresh model of the audited architecture."""
        m, d = self.config.model, self.data
        return ModelSpec(m.factory, dict(m.kwargs), self.config.base_dir, self.config.input, d.kind,
                         tuple(d.input_shape), d.preprocessing, str(self.device))

    def run_units(self, units: list[Unit]) -> list:
        """The values of independent units of work, in order, computed by the run's executor."""
        return self.executor.map(units)

    def share(self, obj):
        """``obj`` as the executor hands it to units (stored once on a cluster)."""
        return self.executor.share(obj)

    def seed_of(self, offset: int) -> int:
        return unit_seed(self.config.seed, offset)

    def copy_model(self, variant: str) -> torch.nn.Module:
        """An independent copy of a variant's model (without the run record's hooks), to transform."""
        with self.recorder.counter.suspended():
            return copy.deepcopy(self.variants[variant].model)

    def finetune(self, model: torch.nn.Module, variant: str, epochs: int) -> None:
        """Train ``model`` in place for ``epochs`` more with ``variant``'s recipe and adversary (no warm-up)."""
        v = self.variants[variant]
        kw = train_kwargs(self, variant, v.defence)
        kw["recipe"] = dataclasses.replace(kw["recipe"], epochs=epochs, warmup_epochs=0.0, select="last", holdout=0)
        kw["desc"] = f"fine-tune {variant}"
        with self.seeded(FINETUNE_SEED_OFFSET):
            train(model, self.data.x_train, self.data.y_train, **kw)

    def build_model(self) -> torch.nn.Module:
        """A fresh, untrained model from the factory, wrapped in the declared input preprocessing."""
        m = self.config.model
        return self.wrap(build_from_factory(m.factory, dict(m.kwargs), self.config.base_dir or None))

    @torch.no_grad()
    def logits(self, model: torch.nn.Module, x, batch_size: int | None = None) -> torch.Tensor:
        batch_size = batch_size or min(1024, self.config.attacks.batch_size)  # the sizes pre-flight probed
        with frozen_eval(model):
            out = [model(x[i:i + batch_size].to(self.device)).float().cpu()
                   for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.data.num_classes)

    def _once(self, key: str, compute, stage: str = ""):
        """``compute()`` once per run; ``stage`` names it in the run record (nested in whichever check asked)."""
        if key not in self._memo:
            if stage:
                with self.stage(stage):
                    self._memo[key] = compute()
            else:
                self._memo[key] = compute()
        return self._memo[key]

    # --- shared intermediates (typed accessors) --------------------------------------------------------------
    def test_logits(self, variant: str) -> torch.Tensor:
        return self._once(f"test_logits:{variant}", lambda: self.logits(self.variants[variant].model,
                                                                        self.data.x_test))

    def clean_correct(self, variant: str) -> np.ndarray:
        """Per-test-point correctness of ``variant`` on clean inputs."""
        return (self.test_logits(variant).argmax(1) == self.data.y_test).numpy()

    def test_probabilities(self, variant: str = "baseline") -> np.ndarray:
        return self._once(f"test_probs:{variant}",
                          lambda: torch.softmax(self.test_logits(variant), 1).double().numpy())

    def robustness(self, variant: str) -> RobustnessEval:
        """The attack grid on ``variant`` (every attack at every eps, true labels)."""
        a = self.config.attacks

        def compute():
            return evaluate_robustness(self.variants[variant].model, self.data.x_test, self.data.y_test,
                                       settings=a, clip=self.data.attack_clip, device=self.device,
                                       seed=self.config.seed, num_classes=self.data.num_classes,
                                       desc=f"attack {variant}", executor=self.executor,
                                       shards=self.config.execution.shards or self.executor.workers)
        return self._once(f"robustness:{variant}", compute, stage=f"attack grid:{variant}")

    def robustness_if_computed(self, variant: str) -> RobustnessEval | None:
        return self._memo.get(f"robustness:{variant}")

    def gated_eps(self) -> float:
        """The eps the audit judges and headlines: the policy's robustness threshold's when the grid has it, else
        the declared threat model's, else the grid's middle one."""
        grid = self.config.attacks.eps
        t = self.policy.thresholds.get("robustness")
        tm = self.config.threat_model
        for eps in (t.eps if t is not None else None, tm.eps):
            match = [e for e in grid if eps is not None and same_eps(eps, e)]
            if match:
                return match[0]
        return grid[len(grid) // 2]

    def embedding(self, split: str) -> np.ndarray | None:
        """The baseline's penultimate embeddings of the "train" or "test" split, or None (no final Linear)."""
        def compute():
            x = self.data.x_train if split == "train" else self.data.x_test
            e = penultimate(self.variants["baseline"].model, x, device=self.device)
            return None if e is None else e.numpy()
        return self._once(f"embedding:{split}", compute, stage=f"embeddings:{split}")

    def embedding_unavailable(self) -> str:
        """Why the baseline's embeddings cannot be had ('' when they can): the skip reason of checks using them."""
        if "baseline" not in self.variants:
            return "no baseline model to embed the data with"
        if self.embedding("train") is None:
            return "the model has no final nn.Linear layer to read embeddings from"
        return ""

    def input_leaks(self) -> tuple[float, Leaks]:
        """(threshold, Leaks) of the test split against the training split in input space."""
        def compute():
            d = self.data
            xtr, xte = d.x_train.flatten(1).float(), d.x_test.flatten(1).float()
            thr = calibrated_threshold(xtr, quantile=self.config.leakage.quantile, seed=self.config.seed)
            return thr, find_leaks(xtr, d.y_train.numpy(), xte, d.y_test.numpy(), threshold=thr)
        return self._once("input_leaks", compute, stage="input-space neighbours")

    def test_label_issues(self) -> np.ndarray:
        """Ranked test rows whose label cleanlab doubts, from the baseline's out-of-sample probabilities."""
        return self._once("test_label_issues",
                          lambda: find_issues(self.data.y_test.numpy(), self.test_probabilities("baseline")))

    def label_probabilities(self, compute=None) -> np.ndarray | None:
        """The out-of-sample probabilities of the training labels: computed by ``compute()`` on first call;
        without ``compute``, whatever an earlier caller computed (None if none did)."""
        if compute is None:
            return self._memo.get("label_probabilities")
        return self._once("label_probabilities", compute, stage="out-of-fold probabilities")

    def corruption_errors(self, variant: str) -> dict:
        """(corruption, severity) -> error rate of ``variant`` (the same seeded corruptions for every variant)."""
        d = self.data
        return self._once(f"corruptions:{variant}", lambda: corruption_errors(
            self.variants[variant].model, d.x_test, d.y_test, clip=d.attack_clip, kind=d.kind,
            seed=self.config.seed, device=self.device, batch_size=min(512, self.config.attacks.batch_size)),
            stage=f"corruptions:{variant}")

    def measurement(self, check: str) -> Measurement | None:
        """The measurement of a data-scope check that already ran (declare it in ``requires``), or None."""
        return self.measurements.get(check)

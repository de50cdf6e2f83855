"""What a check sees of the run (:class:`RunView`, the engine's Context satisfies it) and the results checks share.

A shared result is a class with its own ``compute``: ``run.get(RobustnessGrid, variant)`` computes it once per
(class, variant) and hands every later caller the same object; ``run.computed(Kind, variant)`` is it only if some
caller already asked (None otherwise). The run-time of each is a stage of the run record (``stage``), nested in
whichever check asked first.
"""
from __future__ import annotations

from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch

from audit.core.result import Measurement
from audit.methods.corruptions import corruption_errors
from audit.methods.evaluation import GridRun, RobustnessEval, evaluate_robustness
from audit.methods.label_issues import find_issues
from audit.methods.worst_case import BreakLedger
from audit.models.embeddings import last_linear, penultimate

T = TypeVar("T")


class RunView(Protocol):
    """The part of the engine's Context checks use (audit/engine/context.py documents each member)."""

    @property
    def config(self) -> Any: ...
    @property
    def policy(self) -> Any: ...
    @property
    def data(self) -> Any: ...
    @property
    def device(self) -> Any: ...
    @property
    def variants(self) -> Any: ...        # name -> Variant (model, description, defence, train_stats)
    @property
    def warnings(self) -> list: ...
    @property
    def user_pred_probs(self) -> Any: ...
    @property
    def models(self) -> Any: ...          # build_model(), wrap(m), spec(), copy_model(v), finetune(m, v, epochs)
    @property
    def executor(self) -> Any: ...
    @property
    def gated_eps(self) -> float: ...
    @property
    def can_train(self) -> bool: ...

    def get(self, kind: type[Shared[T]], variant: str | None = None) -> T: ...
    def computed(self, kind: type[Shared[T]], variant: str | None = None) -> T | None: ...
    def clean_correct(self, variant: str) -> np.ndarray: ...
    def logits(self, model, x, batch_size: int | None = None) -> torch.Tensor: ...
    def measurement(self, check: str, variant: str | None = None) -> Measurement | None: ...
    def stage(self, name: str): ...
    def stage_seconds(self, name: str) -> float | None: ...   # a finished stage's wall seconds, run here
    def run_units(self, units: list) -> list: ...
    def share(self, obj): ...


class Shared(Generic[T]):
    """One result several checks share. ``stage``: its run-record stage ('' for none; ``{variant}`` is filled)."""

    stage: ClassVar[str] = ""

    @classmethod
    def compute(cls, run: RunView, variant: str | None) -> T:
        raise NotImplementedError

    @classmethod
    def stage_name(cls, variant: str | None) -> str:
        return cls.stage.format(variant=variant)


class TestLogits(Shared[torch.Tensor]):
    """A variant's logits on the test split."""

    __test__ = False  # not a pytest class

    @classmethod
    def compute(cls, run, variant):
        return run.logits(run.variants[variant].model, run.data.x_test)


class TestProbabilities(Shared[np.ndarray]):
    """A variant's softmax probabilities (float64) on the test split."""

    __test__ = False

    @classmethod
    def compute(cls, run, variant):
        return torch.softmax(run.get(TestLogits, variant), 1).double().numpy()


class RobustnessGrid(Shared[RobustnessEval]):
    """The attack grid on a variant (every attack at every eps, true labels)."""

    stage = "attack grid:{variant}"

    @classmethod
    def compute(cls, run, variant):
        d = run.data
        return evaluate_robustness(run.variants[variant].model, d.x_test, d.y_test,
                                   GridRun(settings=run.config.attacks, clip=d.attack_clip, device=run.device,
                                           seed=run.config.seed, num_classes=d.num_classes,
                                           desc=f"attack {variant}"),
                                   executor=run.executor, shards=run.config.execution.shards or run.executor.workers)


class Breaks(Shared[BreakLedger]):
    """The points attacks outside the grid broke on a variant (validity probes, the ART cross-check, the deployment
    check's attacks on its source): each check that attacks test points adds its record
    (``run.get(Breaks, variant).add(...)``, breaks verified first); the robustness check, which runs after them,
    counts every one in the worst case (audit/methods/worst_case.py)."""

    @classmethod
    def compute(cls, run, variant):
        return BreakLedger(int(run.data.x_test.shape[0]))


class _Embeddings(Shared[np.ndarray | None]):
    split: ClassVar[str] = ""

    @classmethod
    def compute(cls, run, variant):
        x = run.data.x_train if cls.split == "train" else run.data.x_test
        e = penultimate(run.variants["baseline"].model, x, device=run.device,
                        batch_size=min(1024, run.config.attacks.batch_size))   # the sizes pre-flight probed
        return None if e is None else e.numpy()


class TrainEmbeddings(_Embeddings):
    """The baseline's penultimate embeddings of the training split, or None (no final Linear layer)."""

    split, stage = "train", "embeddings:train"


class TestEmbeddings(_Embeddings):
    """The baseline's penultimate embeddings of the test split, or None (no final Linear layer)."""

    __test__ = False
    split, stage = "test", "embeddings:test"


def embedding_unavailable(run: RunView) -> str:
    """Why the baseline's embeddings cannot be had ('' when they can): the skip reason of checks using them."""
    if "baseline" not in run.variants:
        return "no baseline model to embed the data with"
    if last_linear(run.variants["baseline"].model) is None:   # decided without running the model
        return "the model has no final nn.Linear layer to read embeddings from"
    return ""


NO_EMBEDDINGS = "the model's last nn.Linear layer is not on its forward path: no embeddings to read"


class TestLabelIssues(Shared[np.ndarray]):
    """Ranked test rows whose label cleanlab doubts, from the baseline's out-of-sample probabilities."""

    __test__ = False

    @classmethod
    def compute(cls, run, variant):
        return find_issues(run.data.y_test.numpy(), run.get(TestProbabilities, "baseline"))


class CorruptionErrors(Shared[dict]):
    """(corruption, severity) -> error rate of a variant (the same seeded corruptions for every variant)."""

    stage = "corruptions:{variant}"

    @classmethod
    def compute(cls, run, variant):
        d = run.data
        return corruption_errors(run.variants[variant].model, d.x_test, d.y_test, clip=d.attack_clip, kind=d.kind,
                                 seed=run.config.seed, device=run.device,
                                 batch_size=min(512, run.config.attacks.batch_size))

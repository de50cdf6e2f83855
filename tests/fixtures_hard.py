"""Harder model fixtures on digits28 (28x28 MNIST-like digits, 1,347 train / 450 test, clip (0, 1), eps 0.3), for
tests that need a model with a known failure: each is trained once per session (the fixtures in tests/conftest.py),
seeded, on the CPU, and saved as a checkpoint the CLI and ``audit.run`` load without unpickling.

- ``natural28``: a naturally trained SmallCNN, accurate and easy to attack;
- ``fgsm_overfit28``: single-step FGSM training (no random start, step = eps = 0.3) run into catastrophic
  overfitting: FGSM accuracy near clean while PGD-20 breaks almost every point;
- ``masked28``: ``natural28`` behind an input quantisation (x -> round(16 x) / 16, zero gradient everywhere):
  gradient attacks find nothing, the score-based Square attack breaks almost every point;
- ``undertrained28``: one epoch at lr 1e-5: the training loss stays at ln(10), the model near chance.

What each measured (and how long it trained, on one torch thread: ``one_thread``) is in its ``train_*``
docstring; ``tests/test_fixtures_hard.py`` asserts the properties.

A fixture's ``model_table()`` is the ``[model]`` table that loads its checkpoint (``factory``, ``kwargs``,
``weights``): natural28, fgsm_overfit28 and undertrained28 use the shipped ``audit.models:build_small_cnn``;
masked28 needs ``tests.fixtures_hard:build_masked_cnn28``, importable where the repository root is on
``sys.path`` (pytest's ``pythonpath``; a subprocess needs ``cwd`` or ``PYTHONPATH`` set to the root).
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from attacks import ATTACKS
from attacks.adversaries import Adversary
from attacks.training import Recipe, TrainStats, train
from audit.data.splits import Splits
from audit.methods.seeding import seeded
from audit.models.reference import SmallCNN

SOURCE = "digits28"
EPS = 0.3
CHANCE_LOSS = math.log(10)
LEVELS = 16                        # masked28's quantisation grid: 1/16
SMALL_CNN = "audit.models:build_small_cnn"
MASKED_CNN = "tests.fixtures_hard:build_masked_cnn28"
NATURAL = dict(width=32, recipe=Recipe(epochs=5, batch_size=32, lr=3e-3, seed=0))
FGSM_OVERFIT = dict(width=16, recipe=Recipe(epochs=5, batch_size=32, lr=3e-3, seed=0, overfit_guard=False))
UNDERTRAINED = dict(width=32, recipe=Recipe(epochs=1, batch_size=64, lr=1e-5, seed=0))


@contextlib.contextmanager
def one_thread():
    """Torch on one intra-op thread inside (restored after): the fixtures train the same weights whatever the
    session's thread count (tests/conftest.py sets 2), and on a shared 2-core machine two threads per process
    made training 5-10x slower (natural28: 49 s instead of 9 s wall; fgsm_overfit28: 90 s instead of 7 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def digits28() -> Splits:
    """The built-in digits28 splits at the default test fraction and seed 0 (what ``source = "digits28"`` loads)."""
    from audit.data.sources import BUILTIN
    return BUILTIN[SOURCE](seed=0)


class QuantisedInput(nn.Module):
    """``inner`` on inputs rounded to a 1/``levels`` grid: the rounding has a zero gradient everywhere, so every
    gradient attack sees a flat loss (gradient masking), while the clean predictions barely change."""

    def __init__(self, inner: nn.Module, levels: int = LEVELS):
        super().__init__()
        self.inner, self.levels = inner, int(levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * self.levels) / self.levels)


def build_masked_cnn28(levels: int = LEVELS, **kwargs) -> nn.Module:
    """The ``[model] factory`` of masked28: a SmallCNN (``kwargs``) behind ``QuantisedInput``."""
    return QuantisedInput(SmallCNN(**kwargs), levels)


def cnn_kwargs(model: SmallCNN) -> dict[str, int]:
    """The ``build_small_cnn`` keywords that rebuild ``model``'s architecture, read from its layers."""
    first, second, dense = (cast(Any, model.body[i]) for i in (0, 2, 6))  # conv, conv, linear
    width = int(second.out_channels)
    side = 2 * math.isqrt(int(dense.in_features) // width)
    return {"in_channels": int(first.in_channels), "num_classes": int(model.head.out_features),
            "image_size": side, "width": width}


def factory_of(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """(``[model] factory``, ``kwargs``) that rebuild ``model`` for its state dict."""
    if isinstance(model, QuantisedInput) and isinstance(model.inner, SmallCNN):
        return MASKED_CNN, {"levels": model.levels, **cnn_kwargs(model.inner)}
    if isinstance(model, SmallCNN):
        return SMALL_CNN, cnn_kwargs(model)
    raise TypeError(f"no factory known for {type(model).__name__}")


def save_checkpoint(model: nn.Module, path: Path | str) -> dict[str, Any]:
    """Write ``model``'s weights to ``path`` (``.safetensors``, or a ``.pt``/``.pth`` state dict that loads with
    ``weights_only=True``) and return the ``[model]`` table that loads them (factory, kwargs, weights)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
    elif path.suffix in (".pt", ".pth"):
        torch.save(state, path)
    else:
        raise ValueError(f"save_checkpoint: {path.name}: give a .safetensors, .pt or .pth path")
    factory, kwargs = factory_of(model)
    return {"factory": factory, "kwargs": kwargs, "weights": str(path)}


@dataclass(frozen=True)
class HardModel:
    """A trained fixture model (eval mode, CPU), its checkpoint and how its training went."""

    name: str
    model: nn.Module
    checkpoint: Path
    train_seconds: float                   # wall seconds of training (0: built from another fixture)
    train_cpu_seconds: float
    losses: tuple[float | None, ...] = ()  # mean training loss per epoch
    training: dict[str, Any] = field(default_factory=dict)  # the [training] keys that reproduce it under advaudit

    def model_table(self) -> dict[str, Any]:
        """The ``[model]`` table (factory, kwargs, weights) that loads this checkpoint."""
        factory, kwargs = factory_of(self.model)
        return {"factory": factory, "kwargs": kwargs, "weights": str(self.checkpoint)}

    def config(self, **sections: dict[str, Any]) -> dict[str, Any]:
        """A config dict (as ``audit.run(config=...)`` takes) auditing this checkpoint on digits28 at eps 0.3;
        ``sections`` are merged over it (``attacks={"preset": "quick"}``)."""
        base: dict[str, Any] = {"data": {"source": SOURCE}, "model": self.model_table(),
                                "threat_model": {"norm": "linf", "eps": EPS}}
        for key, table in sections.items():
            base[key] = {**base.get(key, {}), **table}
        return base


def _train(name: str, spec: dict, folder: Path, adversary: Adversary | None = None) -> HardModel:
    """A SmallCNN of ``spec["width"]`` initialised with the recipe's seed and trained on digits28."""
    data = digits28()
    recipe: Recipe = spec["recipe"]
    with one_thread(), seeded(recipe.seed):  # the initialisation, leaving the global generators' state as it was
        model = SmallCNN(image_size=28, width=spec["width"])
        wall, cpu = time.perf_counter(), time.process_time()
        stats: TrainStats = train(model, data.x_train, data.y_train, recipe, adversary, desc=name)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model.eval()
    path = Path(folder) / f"{name}.safetensors"
    save_checkpoint(model, path)
    return HardModel(name, model, path, wall, cpu, tuple(h.loss for h in stats.history),
                     {"epochs": recipe.epochs, "batch_size": recipe.batch_size, "lr": recipe.lr})


def train_natural28(folder: Path) -> HardModel:
    """Natural training, 5 epochs (Adam, lr 3e-3, batch 32), SmallCNN width 32. Measured on the 450 test points:
    clean accuracy 96.7%, PGD-20 (eps 0.3) 0.0%; final epoch loss 0.022; trains in 8.7-14.8 s wall on 2 cores
    shared with other jobs (load 4-5), 5.5-9 s CPU."""
    return _train("natural28", NATURAL, folder)


def train_fgsm_overfit28(folder: Path) -> HardModel:
    """FGSM training at eps 0.3 from the clean point (step = eps, no random start, no warm-up, the overfitting
    guard off), 5 epochs (Adam, lr 3e-3, batch 32), SmallCNN width 16: catastrophic overfitting. Measured on the
    450 test points: clean 92.0%, FGSM (eps 0.3) 87.6%, PGD-20 (eps 0.3) 0.4%; epoch losses 2.16 -> 0.40; trains in
    7.3-8.2 s wall on 2 shared cores (load 4-5), 4.9 s CPU."""
    return _train("fgsm_overfit28", FGSM_OVERFIT, folder, Adversary("fgsm", EPS))


def make_masked28(natural: HardModel, folder: Path) -> HardModel:
    """``natural28`` behind ``QuantisedInput`` (1/16 grid), nothing trained (0 s). Measured on the 450 test
    points: clean 96.7%, PGD-20 (eps 0.3) 96.2% (a zero gradient: PGD moves only by its random start), Square
    (eps 0.3, 1,000 queries) 0.2%."""
    model = QuantisedInput(natural.model, LEVELS).eval()
    path = Path(folder) / "masked28.safetensors"
    save_checkpoint(model, path)
    return HardModel("masked28", model, path, 0.0, 0.0, natural.losses, dict(natural.training))


def train_undertrained28(folder: Path) -> HardModel:
    """One epoch at lr 1e-5 (Adam, batch 64), SmallCNN width 32: the model does not learn. Measured: training loss
    2.302 (ln 10 = 2.303), clean accuracy 18.0% on the 450 test points (10 classes); trains in 1.7-2.1 s wall,
    1.2-1.4 s CPU."""
    return _train("undertrained28", UNDERTRAINED, folder)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)          # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def write_config(config: dict[str, Any], path: Path | str) -> Path:
    """``config`` (e.g. ``HardModel.config()``) as a TOML file for ``advaudit run --config``: top-level scalars,
    then one ``[table]`` per dict (a dict inside a table is written inline)."""
    path = Path(path)
    lines = [f"{k} = {_toml(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for key, table in config.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def attacked_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str, **settings) -> float:
    """Accuracy on ``ATTACKS[attack]``'s adversarial examples at eps 0.3 (``settings``: the attack's keywords)."""
    settings.setdefault("eps", EPS)
    with one_thread():
        return accuracy(model, ATTACKS[attack](model, x, y, **settings).x_adv, y)

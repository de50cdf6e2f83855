"""The audit context: config, data, device, seeds and the trained model variants, with cached evaluations.

Checks read from the context; expensive evaluations (clean predictions, the attack grid) are computed once per
variant and shared by every check that needs them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attacks.base import frozen_eval
from attacks.training import Adversary, Regularisers, TrainStats, train
from audit.config import AuditConfig, DefenceConfig
from audit.data import Splits
from audit.errors import UsageError
from audit.model_io import InputAffine, LoadedModel, apply_weights, build_from_factory, read_state_dict
from audit.policy import Policy

log = logging.getLogger(__name__)


@dataclass
class Variant:
    """One trained model: the baseline or a defence trained with the same factory, data and budget."""

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


def input_wrapper(model: torch.nn.Module, config: AuditConfig, data: Splits) -> torch.nn.Module:
    """Wrap ``model`` with the declared preprocessing so attacks and eps stay in input units (or return it)."""
    inp = config.input
    if data.kind == "image" and inp.mean:
        shape = (-1,) + (1,) * (len(data.input_shape) - 1)
        std, mean = torch.tensor(inp.std).view(shape), torch.tensor(inp.mean).view(shape)
        return InputAffine(model, 1.0 / std, -mean / std)
    if data.kind == "tabular" and inp.feature_units == "raw":
        p = data.preprocessing
        return InputAffine(model, torch.tensor(p["std"]), torch.tensor(p["mean"]))
    return model


@dataclass
class Context:
    config: AuditConfig
    policy: Policy
    data: Splits
    device: torch.device
    base_dir: Path | None = None
    user_model: LoadedModel | None = None
    variants: dict[str, Variant] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def can_train(self) -> bool:
        """Whether models of the audited architecture can be built (a factory, not only an archive)."""
        return not self.config.model.archive

    def seed_everything(self, offset: int = 0) -> None:
        torch.manual_seed(self.config.seed + offset)
        np.random.seed(self.config.seed + offset)

    def build_model(self) -> torch.nn.Module:
        """A fresh, untrained model from the factory, wrapped in the declared input preprocessing."""
        m = self.config.model
        model = build_from_factory(m.factory, dict(m.kwargs), self.base_dir)
        return input_wrapper(model, self.config, self.data).to(self.device)

    def train_variants(self) -> None:
        """The baseline (the user's trained model, or trained here) and each configured defence, trained from the
        same factory, seed and budget."""
        t = self.config.training
        plans = []
        if self.user_model is not None and self.user_model.pretrained:
            module = input_wrapper(self.user_model.module, self.config, self.data).to(self.device).eval()
            self.variants["baseline"] = Variant("baseline", f"the model as supplied ({self.user_model.source})",
                                                module, None, None)
        else:
            plans.append(("baseline", "natural training (no defence)", None))
        for d in self.config.defences:
            if d.weights:  # a defended checkpoint the user already trained
                path = (Path(self.base_dir or ".") / d.weights).resolve()
                if not path.is_file():
                    raise UsageError(f"defences.{d.name}.weights: file not found: {path}")
                m = self.config.model
                module = apply_weights(build_from_factory(m.factory, dict(m.kwargs), self.base_dir),
                                       read_state_dict(path, m.trust_pickle), path)
                module = input_wrapper(module, self.config, self.data).to(self.device).eval()
                self.variants[d.name] = Variant(d.name, d.describe(), module, d, None)
            else:
                plans.append((d.name, d.describe(), d))
        for name, description, defence in plans:
            self.seed_everything()
            model = self.build_model()
            adversary = None if defence is None or defence.method == "none" else \
                Adversary(defence.method, defence.eps, steps=defence.steps, beta=defence.beta)
            reg = Regularisers() if defence is None else Regularisers(
                weight_decay=defence.weight_decay, l1=defence.l1, label_smoothing=defence.label_smoothing,
                mixup_alpha=defence.mixup_alpha, input_noise=defence.input_noise, grad_clip=defence.grad_clip)
            stats = train(model, self.data.x_train, self.data.y_train, epochs=t.epochs, batch_size=t.batch_size,
                          lr=t.lr, adversary=adversary, clip=self.data.attack_clip, seed=self.config.seed,
                          desc=f"train {name}", reg=reg)
            if stats.stopped_early:
                self.warnings.append(f"{name}: {stats.stopped_early}")
                description += f" (stopped early: {stats.stopped_early})"
            self.variants[name] = Variant(name, description, model, defence, stats)

    def cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def cached_only(self, key):
        """The cached value for ``key``, or None if it was never computed (nothing is computed here)."""
        return self._cache.get(key)

    @torch.no_grad()
    def logits(self, model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        with frozen_eval(model):
            out = [model(x[i:i + batch_size].to(self.device)).float().cpu()
                   for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.data.num_classes)

    def test_logits(self, variant: str) -> torch.Tensor:
        return self.cached(("test_logits", variant),
                           lambda: self.logits(self.variants[variant].model, self.data.x_test))

"""Load the user's model without executing untrusted code, and wrap it so eps is always in input units.

Accepted: a factory (``package.module:function``) plus weights as ``.safetensors`` or a ``.pt``/``.pth`` state dict
read with ``torch.load(weights_only=True)``; a TorchScript archive; a ``torch.export`` program (``.pt2``). A file
that needs full unpickling (a pickled ``nn.Module``, a checkpoint with custom classes) is refused unless
``model.trust_pickle = true`` is set for a file the user trusts: unpickling runs arbitrary code.
"""
from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from audit.core.errors import UsageError, first_line
from audit.core.hashing import sha256_file
from audit.core.importing import import_callable
from audit.models.archives import load_archive

log = logging.getLogger(__name__)
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass
class LoadedModel:
    """The user's model ready to audit: already trained (``pretrained``) or to be trained from ``factory``."""

    module: nn.Module | None
    pretrained: bool
    source: str              # how it was loaded, for the report
    file_sha256: str = ""    # SHA-256 of the weights / archive file, when one was given
    was_training: bool = False
    trainable: bool | None = None  # in-memory models: whether the config's factory rebuilds the architecture


def build_from_factory(spec: str, kwargs: dict, base_dir: Path | None) -> nn.Module:
    factory = import_callable(spec, "model.factory", base_dir)
    try:
        model = factory(**kwargs)
    except Exception as e:  # noqa: BLE001 - user code
        raise UsageError(f"model.factory: {spec}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) raised "
                         f"{type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"model.factory: {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def read_state_dict(path: Path, trust_pickle: bool) -> dict | nn.Module:
    """Weights from ``.safetensors`` or a torch state dict, never unpickling arbitrary objects unless trusted."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise UsageError(f"model.weights: {path} is not a readable .safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        # torch's own text suggests retrying with weights_only=False, the unsafe option: name only the global
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        first = f"it references the Python object {found.group(1)}" if found else \
            "it holds Python objects other than tensors"
        raise UsageError(f"model.weights: {path.name} needs full unpickling, which can run arbitrary code; refused "
                         f"({first}). Save model.state_dict() or .safetensors, or set model.trust_pickle = true "
                         f"for a file you trust") from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise UsageError(f"model.weights: cannot read {path}: {first_line(e)}") from None
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:  # a training checkpoint holding the state dict
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    if isinstance(obj, nn.Module):
        return obj
    raise UsageError(f"model.weights: {path.name} holds a {type(obj).__name__}, not a state dict of tensors")


def apply_weights(model: nn.Module, weights, path: Path) -> nn.Module:
    if isinstance(weights, nn.Module):  # a trusted full-module pickle
        return weights
    weights = {k.removeprefix("module."): v for k, v in weights.items()}  # DataParallel checkpoints
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:3]) if len(lines) > 1 else lines[0]
        raise UsageError(f"model.weights: {path.name} does not fit the factory's model: {detail[:300]}") from None
    return model


def load_user_model(cfg, base_dir: Path | None) -> LoadedModel:
    """Resolve ``[model]``: an archive, a factory with weights, or a factory to train (nothing loaded yet)."""
    if cfg.archive:
        path = Path(cfg.archive)
        if not path.is_file():
            raise UsageError(f"model.archive: file not found: {path}")
        module = load_archive(path, cfg.trust_pickle)
        return LoadedModel(module, True, f"archive {path.name}", sha256_file(path),
                           was_training=bool(getattr(module, "training", False)))
    if cfg.weights:
        path = Path(cfg.weights)
        if not path.is_file():
            raise UsageError(f"model.weights: file not found: {path}")
        weights = read_state_dict(path, cfg.trust_pickle)
        module = apply_weights(build_from_factory(cfg.factory, dict(cfg.kwargs), base_dir), weights, path)
        return LoadedModel(module, True, f"{cfg.factory} with weights {path.name}", sha256_file(path))
    return LoadedModel(None, False, f"{cfg.factory} trained by advaudit")

"""Model archives without unpickling: TorchScript files and ``torch.export`` ``.pt2`` programs.

TorchScript archives are read by torch's C++ loader, which only rebuilds TorchScript types (a crafted ``data.pkl``
calling a Python function is rejected). A ``.pt2`` archive is not safe to hand to ``torch.export.load``: it
unpickles members whose config says ``use_pickle``, "opaque" constants, and, when the safe load of a member fails,
retries with ``torch.load(weights_only=False)`` (REFERENCE section 11). So a ``.pt2`` is first inspected (any
member that would be unpickled is refused) and then loaded with every unpickling path of Python shut: ``torch.load``
forced to ``weights_only=True`` and ``pickle.load``/``loads``/``Unpickler`` raising. ``model.trust_pickle = true``
lifts both for a file the user trusts.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from audit.core.errors import UsageError, first_line
from audit.models.adapters import ExportedProgram

SAFE_EXPORT = ("export it again with torch.export.save (plain tensors only), or save model.state_dict() as "
               ".safetensors and give model.factory + model.weights; set model.trust_pickle = true only for a file "
               "you trust")


class Refused(pickle.UnpicklingError):
    """An unpickling attempt that advaudit shut."""


def _refuse(*_a, **_k):
    raise Refused("unpickling is shut while loading an untrusted archive")


class _ShutUnpickler:
    def __init__(self, *_a, **_k):
        _refuse()


@contextlib.contextmanager
def no_unpickling():
    """Within: ``torch.load`` only loads with ``weights_only=True``; Python's unpickler refuses everything."""
    real_load = torch.load

    def weights_only_load(*args, **kwargs):
        kwargs["weights_only"] = True
        return real_load(*args, **kwargs)
    saved = (torch.load, pickle.load, pickle.loads, pickle.Unpickler, torch._C._pickle_load_obj)
    torch.load, pickle.load, pickle.loads, pickle.Unpickler = weights_only_load, _refuse, _refuse, _ShutUnpickler
    torch._C._pickle_load_obj = _refuse
    try:
        yield
    finally:
        torch.load, pickle.load, pickle.loads, pickle.Unpickler, torch._C._pickle_load_obj = saved


def pickled_members(path: Path) -> list[str]:
    """The members of a .pt2 archive that ``torch.export.load`` would unpickle."""
    out = []
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        for name in names:
            parts = name.split("/")
            if parts[-1].endswith("_config.json") and ("weights" in parts or "constants" in parts):
                config = json.loads(z.read(name)).get("config", {})
                for fqn, meta in config.items():
                    path_name = str(meta.get("path_name", ""))
                    if meta.get("use_pickle") or not path_name.startswith(("weight_", "tensor_")):
                        out.append(f"{name}: {fqn}")
            elif len(parts) >= 3 and parts[-2] in ("weights", "constants") and parts[-1].endswith(".pt"):
                out.append(name)  # the legacy format: one pickled dict per model
    return out


def load_pt2(path: Path, trust_pickle: bool) -> nn.Module:
    if not trust_pickle:
        try:
            pickled = pickled_members(path)
        except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError, AttributeError) as e:
            raise UsageError(f"model.archive: {path.name} is not a readable .pt2 archive ({e})") from None
        if pickled:
            raise UsageError(f"model.archive: {path.name} holds pickled members ({pickled[0]}"
                             f"{' and more' if len(pickled) > 1 else ''}); unpickling runs code from the file, so "
                             f"it is refused: {SAFE_EXPORT}")
    guard = contextlib.nullcontext() if trust_pickle else no_unpickling()
    try:
        with guard:
            program = torch.export.load(str(path))
        module = ExportedProgram(program.module())
    except Refused:
        raise UsageError(f"model.archive: {path.name} needs unpickling to load; refused: {SAFE_EXPORT}") from None
    except Exception as e:  # noqa: BLE001 - any failure of a foreign file is bad input
        if "weights_only" in str(e) or "npickl" in str(e):  # torch's own hint points at the unsafe option
            raise UsageError(f"model.archive: {path.name} needs unpickling to load; refused: {SAFE_EXPORT}") \
                from None
        raise UsageError(f"model.archive: cannot load torch.export program {path.name}: "
                         f"{first_line(e)}") from None
    if not any(True for _ in module.parameters()) and not any(True for _ in module.graph.buffers()):
        raise UsageError(f"model.archive: the program in {path.name} has no parameters or buffers: export the "
                         f"model itself (torch.export.export(model, ...)), not a wrapper around a function")
    return module


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_archive(path: Path, trust_pickle: bool = False) -> nn.Module:
    """A TorchScript archive or a .pt2 program, loaded without running code from the file."""
    if path.suffix == ".pt2":
        return load_pt2(path, trust_pickle)
    if not is_torchscript(path):
        raise UsageError(f"model.archive: {path.name} is neither a TorchScript archive nor a .pt2 torch.export "
                         f"program (for a state dict use model.factory with model.weights)")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"model.archive: cannot load TorchScript archive {path.name}: "
                         f"{first_line(e)}") from None

"""The evidence bundle: the files besides the reports that let an auditor re-check what was audited.

Every output directory holds, next to report.html / results.json / summary.md:
  models/<variant>.safetensors   the weights of every audited variant exactly as attacked (no pickle)
  config.json                    the resolved configuration of the run (every key, defaults included)
  config.toml                    the user's config file as given, when the run had one
  policy.toml                    the policy file exactly as read (its SHA-256 is the one in the report)
  source/<file>.py               the model factory's source file, with ``[output] bundle_source``
and the manifest (audit/evidence/manifest.py) hashes all of them, with the SHA-256 of every data split, of every
file the user supplied (the provenance block's, beside the bundle copy made from it) and the environment. Data
are referenced by hash, not copied: they can be large and are the user's to keep.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes

from audit.core.serde import to_data
from audit.models.adapters import unwrap


def audited_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the model as audited: the user's module inside the input wrapper (which holds only
    the declared preprocessing constants, recorded in the config)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in unwrap(model).state_dict().items()
            if isinstance(v, torch.Tensor)}


@dataclass(frozen=True)
class Weights:
    """One audited variant's weights as audited (``audited_weights``), with its description."""

    variant: str
    description: str
    state: dict[str, torch.Tensor]


@dataclass(frozen=True)
class BundleInputs:
    """What the bundle is made of, as plain data: the resolved config, the policy's text, the variants' weights
    (empty without weights), the user's config file, the user's model file (source, SHA-256) if any, and the
    model's source file to bundle ("source/<file>.py", bytes) with ``[output] bundle_source``."""

    config: Any
    policy_text: str
    weights: tuple[Weights, ...] = ()
    config_path: Path | None = None
    model_file: tuple[str, str] | None = None
    source: tuple[str, bytes] | None = None


def bundle_inputs(config, policy, variants: Mapping, user_model=None, config_path: Path | None = None,
                  include_weights: bool = True, source: tuple[str, bytes] | None = None) -> BundleInputs:
    """The bundle's inputs from a finished run: ``variants`` name -> an object with ``model`` and
    ``description``; ``user_model`` the model as loaded (its file's source and SHA-256 are recorded)."""
    weights = tuple(Weights(name, v.description, audited_weights(v.model)) for name, v in variants.items()) \
        if include_weights else ()
    model_file = (user_model.source, user_model.file_sha256) if user_model is not None and \
        user_model.file_sha256 else None
    return BundleInputs(config, policy.text, weights, config_path, model_file, source)


def artifacts(bundle: BundleInputs) -> dict[str, bytes]:
    """Relative path -> bytes of every bundle file other than the rendered reports and the manifest."""
    files: dict[str, bytes] = {}
    for w in bundle.weights:
        files[f"models/{w.variant}.safetensors"] = safetensors_bytes(
            w.state, metadata={"variant": w.variant, "description": w.description[:200]})
    files["config.json"] = (json.dumps(to_data(bundle.config), indent=1) + "\n").encode("utf-8")
    if bundle.config_path is not None:
        files["config.toml"] = Path(bundle.config_path).read_bytes()
    files["policy.toml"] = bundle.policy_text.encode("utf-8")
    if bundle.source is not None:
        files[bundle.source[0]] = bundle.source[1]
    return files


def bundle_facts(result, bundle: BundleInputs) -> dict:
    """What the manifest records besides file hashes: the data splits' SHA-256, the model file's, and every file
    the user supplied (the provenance block's, with the bundle copy made from each)."""
    facts: dict = {"data": {"source": bundle.config.data.source, "splits_sha256": to_data(result.dataset.sha256)}}
    if bundle.model_file is not None:
        facts["model_file"] = {"source": bundle.model_file[0], "sha256": bundle.model_file[1]}
    if getattr(result, "provenance", None) is not None:
        facts["supplied_files"] = to_data(result.provenance.files)
    return facts

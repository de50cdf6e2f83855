"""The evidence bundle: the files besides the reports that let an auditor re-check what was audited.

Every output directory holds, next to report.html / results.json / summary.md:
  models/<variant>.safetensors   the weights of every audited variant exactly as attacked (no pickle)
  config.json                    the resolved configuration of the run (every key, defaults included)
  config.toml                    the user's config file as given, when the run had one
  policy.toml                    the policy file exactly as read (its SHA-256 is the one in the report)
and the manifest (audit/evidence.py) hashes all of them, with the SHA-256 of every data split and the
environment. Data are referenced by hash, not copied: they can be large and are the user's to keep.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from audit.core.serde import to_data
from audit.engine.context import Context
from audit.models.adapters import unwrap


def audited_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the model as audited: the user's module inside the input wrapper (which holds only
    the declared preprocessing constants, recorded in the config)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in unwrap(model).state_dict().items()
            if isinstance(v, torch.Tensor)}


def artifacts(ctx: Context, config_path: Path | None = None, include_weights: bool = True) -> dict[str, bytes]:
    """Relative path -> bytes of every bundle file other than the rendered reports and the manifest."""
    files: dict[str, bytes] = {}
    if include_weights:
        for name, v in ctx.variants.items():
            files[f"models/{name}.safetensors"] = safetensors_bytes(
                audited_weights(v.model), metadata={"variant": name, "description": v.description[:200]})
    files["config.json"] = (json.dumps(to_data(ctx.config), indent=1) + "\n").encode("utf-8")
    if config_path is not None:
        files["config.toml"] = Path(config_path).read_bytes()
    files["policy.toml"] = ctx.policy.text.encode("utf-8")
    return files


def bundle_facts(result, ctx: Context) -> dict:
    """What the manifest records besides file hashes: the data splits' SHA-256 and the model file's."""
    facts = {"data": {"source": ctx.config.data.source, "splits_sha256": to_data(result.dataset.sha256)}}
    if ctx.user_model is not None and ctx.user_model.file_sha256:
        facts["model_file"] = {"source": ctx.user_model.source, "sha256": ctx.user_model.file_sha256}
    return facts

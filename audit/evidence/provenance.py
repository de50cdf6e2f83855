"""The provenance block of a run (``AuditResult.provenance``): who ran it (user, host, time, tool version), in which
CI run, at which git commit, and the SHA-256 of every file the user supplied beside the bundle file made from it.

Never fails the run. Git (audit/evidence/git_state.py, running nothing the repository controls): the repository
holding the config file; without one (the Python API, the demo) the one holding the model's source file (the file
defining its factory or in-memory class, audit/evidence/source_files.py) unless that is installed code. A data
folder's hash covers the files its loader reads (audit/evidence/data_digest.py). Every string here (CI variables,
user, host, paths, git output) is hostile: made valid Unicode (``text``), bounded here, escaped per format.
"""
from __future__ import annotations

import dataclasses
import getpass
import hashlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import torch

from audit.core.files import read_bounded
from audit.core.hashing import sha256_file
from audit.core.provenance_parts import ArrayDigest, CIRun, SuppliedFile
from audit.core.result import Provenance
from audit.core.version import __version__
from audit.engine.assemble import IN_MEMORY_DATA
from audit.evidence.data_digest import TooLarge, files_sha256, loader_files
from audit.evidence.git_state import git_state
from audit.evidence.source_files import defining_file, factory_source, module_file, third_party

log = logging.getLogger(__name__)
VALUE_LIMIT = 200          # characters kept of each CI variable
SOURCE_LIMIT = 4 * 2**20   # bytes of a factory source file copied into the bundle
THIRD_PARTY = " (third-party, not bundled)"
CI_VARS = ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_WORKFLOW",
           "GITHUB_SERVER_URL", "CI_PIPELINE_ID", "CI_PROJECT_PATH", "CI_COMMIT_SHA", "CI_JOB_URL", "BUILD_URL",
           "BUILD_NUMBER", "BUILD_ID", "GIT_URL", "GIT_COMMIT", "JOB_NAME")


def text(value: str) -> str:
    """``value`` as valid Unicode: a byte the file system or environment gave undecoded (a surrogate escape, as in
    ``USER=$'ev\\xffil'`` or a non-UTF-8 file name) becomes its ``\\xff`` escape, so no output fails to encode."""
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:   # a surrogate that is no escape of a byte
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def clean(obj):
    """``obj`` (a dataclass of the provenance block, a tuple, a str) with every string passed through ``text``."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, tuple):
        return tuple(clean(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: clean(getattr(obj, f.name)) for f in dataclasses.fields(obj)})
    return obj


def _bounded(value: str | None) -> str:
    return text(value or "")[:VALUE_LIMIT]


def operator() -> tuple[str, str]:
    """(user, host) of this process, never raising."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry, no USER variable
        user = os.environ.get("USER") or os.environ.get("USERNAME") or ""
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    return _bounded(user) or "unknown", _bounded(host) or "unknown"


def ci_context(env: Mapping[str, str] | None = None) -> CIRun | None:
    """The CI run as GitHub Actions, GitLab CI or Jenkins standard variables report it (a local run can set them
    too), or None when none is set."""
    e = os.environ if env is None else env
    get = {k: _bounded(e.get(k)) for k in CI_VARS}
    if get["GITHUB_RUN_ID"]:
        url = ""
        if get["GITHUB_REPOSITORY"]:
            url = _bounded(f"{get['GITHUB_SERVER_URL'] or 'https://github.com'}/{get['GITHUB_REPOSITORY']}"
                           f"/actions/runs/{get['GITHUB_RUN_ID']}")
        return CIRun("github-actions", get["GITHUB_RUN_ID"], get["GITHUB_REPOSITORY"], get["GITHUB_SHA"],
                     get["GITHUB_WORKFLOW"], url, get["GITHUB_RUN_ATTEMPT"])
    if get["CI_PIPELINE_ID"]:
        return CIRun("gitlab-ci", get["CI_PIPELINE_ID"], get["CI_PROJECT_PATH"], get["CI_COMMIT_SHA"], "",
                     get["CI_JOB_URL"])
    if get["BUILD_URL"] or get["JOB_NAME"]:
        return CIRun("jenkins", get["BUILD_NUMBER"] or get["BUILD_ID"], get["GIT_URL"], get["GIT_COMMIT"],
                     get["JOB_NAME"], get["BUILD_URL"])
    return None


def _data_folder(role: str, p: Path, source: str) -> SuppliedFile:
    """The record of a data folder: the digest of the files its loader reads, or "not hashed" over the bound."""
    try:
        digest, size = files_sha256(p, loader_files(source, p))
    except TooLarge as e:
        log.warning("provenance: %s %s not hashed (%s)", role, p, e)
        return SuppliedFile(role=role, path=str(p), sha256="", note=f"not hashed ({e})")
    return SuppliedFile(role=role, path=str(p), sha256=digest, bytes=size)


def supplied(role: str, path: Path | str, source: str = "") -> SuppliedFile | None:
    """The record of one file the user supplied (a data folder of the ``source`` loader: the files it reads), or
    None when it is gone or unreadable."""
    p = Path(path)
    try:
        if source in FOLDERS:
            return _data_folder(role, p, source)
        return SuppliedFile(role=role, path=str(p), sha256=sha256_file(p), bytes=p.stat().st_size)
    except Exception as e:  # noqa: BLE001 - OSError, or the loader's scan refusing the folder now
        log.warning("provenance: cannot hash %s %s: %s", role, p, getattr(e, "strerror", None) or e)
        return None


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict, independent of how it was stored: for each key in sorted order, the UTF-8 of
    "<key>\\0<dtype>\\0<shape>\\0" (shape as a Python tuple, dtype as torch names it) then the tensor's C-order
    bytes."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def module_state_sha256(module: torch.nn.Module) -> str:
    return state_sha256({k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)})


def array_digests(arrays: Mapping) -> tuple[ArrayDigest, ...]:
    """The digests of in-memory numpy arrays (name -> array), in the order given."""
    import numpy as np
    out = []
    for name, a in arrays.items():
        c = np.ascontiguousarray(a)
        out.append(ArrayDigest(str(name), str(c.dtype), tuple(int(n) for n in c.shape),
                               hashlib.sha256(c.tobytes()).hexdigest()))
    return tuple(out)


def model_source(config, model_class: type | None) -> Path | None:
    """The source file of the model's code: the file defining the factory, or an in-memory model's class."""
    if model_class is None and config.model.archive:
        return None
    if model_class is not None:
        return defining_file(model_class) or module_file(model_class.__module__)
    return factory_source(config.model.factory)


def _source(role: str, path: Path) -> SuppliedFile | None:
    return supplied(role + (THIRD_PARTY if third_party(path) else ""), path)


DATA_ROLES = {"npz": "data (npz archive)", "npy": "data (folder of .npy files)", "folder": "data (image folder)",
              "table": "data (table)"}
FOLDERS = ("npy", "folder")
SOURCE_ROLES = ("model factory source", "model class source")


def data_files(config) -> list[SuppliedFile | None]:
    """The data the config names: its file or folder, the table's test file, the OOD archive, a data factory's
    module source (a built-in source has none)."""
    d, base = config.data, Path(config.base_dir or ".")
    out = []
    if d.source in DATA_ROLES:
        out.append(supplied(DATA_ROLES[d.source], base / d.path if d.path else base, d.source))
    if d.source == "table" and d.test_path:
        out.append(supplied("test data (table)", base / d.test_path))
    if d.source == "factory" and (path := factory_source(d.factory)) is not None:
        out.append(_source("data factory source", path))
    if d.ood_path:
        out.append(supplied("out-of-distribution inputs (npz)", base / d.ood_path))
    return out


def _weights_state(path: Path, trust_pickle: bool) -> str:
    """The state-dict SHA-256 of a weights file, read as the loader reads it ("" when it cannot be read again)."""
    from audit.models.loading import read_state_dict
    try:
        state = read_state_dict(path, trust_pickle)
    except Exception:  # noqa: BLE001 - read once already; provenance never fails the run
        return ""
    if isinstance(state, torch.nn.Module):
        return module_state_sha256(state)
    return state_sha256({k.removeprefix("module."): v for k, v in state.items()})


def supplied_files(config, policy, config_path: Path | None, source: Path | None,
                   in_memory: bool) -> tuple[SuppliedFile, ...]:
    """Every file the user supplied, each with its role (config, policy, data, weights or archive, the model's
    source)."""
    config_file = supplied("config", Path(config_path).resolve()) if config_path is not None else None
    files: list[SuppliedFile | None] = [config_file]
    if Path(policy.source).is_file():
        files.append(supplied("policy", policy.source))
    else:
        files.append(SuppliedFile("policy (built-in)", policy.source, policy.sha256, len(policy.text.encode())))
    files += data_files(config)
    m = config.model
    if not in_memory and m.archive:
        files.append(supplied("archive", m.archive))
    elif not in_memory and m.weights and (w := supplied("weights", m.weights)) is not None:
        files.append(dataclasses.replace(w, state_sha256=_weights_state(Path(m.weights), m.trust_pickle)))
    if source is not None:
        role = SOURCE_ROLES[1] if in_memory else SOURCE_ROLES[0]
        files.append(_source(role, source))
    return tuple(f for f in files if f is not None)


def collect(config, policy, user_model, audited: torch.nn.Module, config_path: Path | None = None, started: str = "",
            arrays: tuple[ArrayDigest, ...] = (), in_memory_data: bool = False) -> Provenance:
    """The provenance block of a finished run. ``audited``: the baseline's module as audited (unwrapped);
    ``user_model``: the model as loaded (an in-memory one has ``trainable`` set); ``arrays``: the digests of
    in-memory arrays."""
    in_memory = user_model is not None and getattr(user_model, "trainable", None) is not None
    cls = type(audited)
    source = model_source(config, cls if in_memory else None)
    user, host = operator()
    git = (git_state(Path(config_path).resolve().parent, "config file") if config_path is not None else
           git_state(source.resolve().parent, f"model source {source.name}")
           if source is not None and not third_party(source) else None)
    return clean(Provenance(
        user=user, host=host, started=started, tool_version=__version__, ci=ci_context(), git=git,
        files=supplied_files(config, policy, config_path, source, in_memory),
        model_class=f"{cls.__module__}.{cls.__qualname__}", model_state_sha256=module_state_sha256(audited),
        data_source=IN_MEMORY_DATA if in_memory_data else config.data.source, arrays=arrays))


def source_for_bundle(prov: Provenance) -> tuple[str, bytes] | None:
    """("source/<file>.py", bytes) of the model's source file for ``[output] bundle_source``: read bounded, never
    through a link (a path with a link in it is refused with a warning), or None."""
    f = next((f for f in prov.files if f.role.startswith(SOURCE_ROLES)), None)
    if f is not None and f.role.endswith(THIRD_PARTY):
        log.warning("output.bundle_source: %s is installed code (third-party), not the user's; not bundled",
                    Path(f.path).name)
        return None
    if f is None:
        log.warning("output.bundle_source: the model has no Python source file to bundle")
        return None
    p = Path(f.path)
    if Path(os.path.abspath(p)) != p.resolve():
        log.warning("output.bundle_source: %s is reached through a symbolic link; not bundled", p.name)
        return None
    try:
        return f"source/{p.name}", read_bounded(p, SOURCE_LIMIT, "output.bundle_source", follow=False)
    except Exception as e:  # noqa: BLE001 - UsageError or OSError: the run's outputs stand without it
        log.warning("output.bundle_source: %s not bundled: %s", p.name, e)
        return None


def _bundled(f: SuppliedFile) -> str:
    if f.role.startswith(SOURCE_ROLES) and not f.role.endswith(THIRD_PARTY):
        return f"source/{Path(f.path).name}"
    return {"config": "config.toml", "policy": "policy.toml", "policy (built-in)": "policy.toml",
            "weights": "models/baseline.safetensors", "archive": "models/baseline.safetensors"}.get(f.role, "")


def _note(f: SuppliedFile, bundled_sha: str, bundled_state: str) -> str:
    if bundled_sha == f.sha256:
        return ""
    if f.role == "archive":
        return ("the bundle holds the archive's weights (its state dict) as safetensors, not the program: the file "
                "bytes differ by design")
    if f.role == "weights":
        same = f.state_sha256 and f.state_sha256 == bundled_state
        return (f"weights re-serialised as safetensors from the supplied {Path(f.path).suffix or 'file'}: "
                + ("the tensors are the same (equal state-dict SHA-256), the file bytes are not" if same else
                   "the state dict differs from the file's (converted or renamed on loading); the bundle holds "
                   "the tensors audited"))
    if f.role.startswith("policy"):
        return "the bundle's policy.toml is the policy's text as read, written as UTF-8"
    return "the file changed between the audit reading it and the bundle copying it"


def with_bundle(prov: Provenance, files: Mapping[str, bytes], bundled_state: str = "") -> Provenance:
    """``prov`` with each supplied file's bundle copy (name, SHA-256) and why the two differ where they do by
    design; ``files``: the bundle's files (name -> bytes), ``bundled_state``: the state-dict SHA-256 of the
    bundled baseline weights."""
    out = []
    for f in prov.files:
        name = _bundled(f)
        if name not in files:
            out.append(f)
            continue
        digest = hashlib.sha256(files[name]).hexdigest()
        out.append(dataclasses.replace(f, bundled_as=name, bundled_sha256=digest,
                                       note=_note(f, digest, bundled_state)))
    return dataclasses.replace(prov, files=tuple(out))

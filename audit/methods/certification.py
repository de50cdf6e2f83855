"""The certified lower bound of a variant at every eps of the grid (attacks/certify.py does the bounding).

Balls nest and the bounds grow with the ball, so the grid is certified from its smallest eps up and a point not
certified at one eps is not bounded again at a larger one (it counts as not certified there: conservative, never
unsound). Points the model misclassifies without attack cannot be certified and are not bounded. What the attacks
broke is still bounded: that is what the soundness check (C17) compares.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from attacks.bound_graph import NotCertifiable, traced
from attacks.certify import certify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridCertificate:
    """Per eps of the grid: which of the test points (all of them, test order) are certified correct; ``subset``:
    the points bounded at all (the others count as not certified); the layers CROWN left to IBP; seconds per eps."""

    certified: dict[float, np.ndarray]
    subset: np.ndarray
    method: str
    ibp_layers: tuple[str, ...]
    seconds: dict[float, float]


def not_certifiable(model: torch.nn.Module, x: torch.Tensor) -> str:
    """Why bound propagation cannot cover ``model`` ("not certifiable: <layer>"), or "" when it can: the model is
    traced on two inputs, nothing else runs."""
    try:
        traced(model, x[:2])
    except NotCertifiable as e:
        return str(e)
    return ""


@dataclass(frozen=True)
class Threat:
    """What to certify against: every eps of ``grid`` in ``norm`` inside ``clip``, with ``method`` in batches."""

    grid: tuple[float, ...]
    norm: str
    clip: tuple
    method: str = "crown"
    batch_size: int = 64


def certify_grid(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, threat: Threat, *, subset: np.ndarray,
                 clean_ok: np.ndarray, stage=None) -> GridCertificate:
    """Certify the ``subset`` rows of ``(x, y)`` (on the model's device) at every eps of ``threat.grid``;
    ``clean_ok``: clean correctness of every row; ``stage(name)``: a context manager timing each eps."""
    grid, norm, method, batch_size = threat.grid, threat.norm, threat.method, threat.batch_size
    n = len(x)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    clip = tuple(c.to(device) if isinstance(c, torch.Tensor) else c for c in threat.clip)
    todo = np.zeros(n, dtype=bool)
    todo[subset] = True
    todo &= clean_ok
    proven = todo.copy()   # still certified at every eps so far
    out: dict[float, np.ndarray] = {}
    seconds: dict[float, float] = {}
    layers: set[str] = set()
    for eps in sorted(grid):
        rows = np.flatnonzero(proven)
        proven[:] = False
        start = time.perf_counter()
        if rows.size:
            sel = torch.from_numpy(rows)
            with stage(f"{eps:g}") if stage is not None else contextlib.nullcontext():
                cert = certify(model, x[sel].to(device), y[sel].to(device), eps=eps, norm=norm, clip=clip,
                               method=method, batch_size=batch_size)
            proven[rows[cert.certified.cpu().numpy()]] = True
            layers.update(cert.ibp_layers)
        out[eps], seconds[eps] = proven.copy(), round(time.perf_counter() - start, 3)
    log.debug("certified %s: %s", method, {f"{e:g}": int(m.sum()) for e, m in out.items()})
    return GridCertificate({e: out[e] for e in sorted(out)}, np.sort(subset), method, tuple(sorted(layers)),
                           {e: seconds[e] for e in sorted(seconds)})


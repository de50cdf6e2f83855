"""Certified robustness: the points *proven* correct everywhere in the threat ball, the lower bound beside the
attacks' upper bound on robust accuracy. ``certify(model, x, y, eps=...)`` traces the model once
(attacks/bound_graph.py) and bounds every margin ``logit_y - logit_j`` from below with CROWN (attacks/crown.py,
never looser than IBP) or IBP alone (attacks/ibp.py); a point is certified when every lower bound is positive.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import Ball, Norm, frozen_eval
from attacks.bound_graph import traced
from attacks.crown import PER_POINT_FLOATS, crown_margins
from attacks.ibp import ibp_margins

METHODS = ("crown", "ibp")


@dataclass(frozen=True)
class Certificate:
    """margins: lower bounds of ``logit_y - logit_j`` over the ball (N x (K-1)); certified: all of them > 0;
    ibp_layers: the layers whose pre-activation bounds came from IBP because CROWN would not fit."""

    margins: torch.Tensor
    certified: torch.Tensor
    method: str
    ibp_layers: tuple[str, ...]


def certify(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
            clip: tuple = (0.0, 1.0), method: str = "crown", batch_size: int = 64) -> Certificate:
    """Certify ``model`` on ``(x, y)`` against every perturbation of ``norm`` size ``eps`` inside ``clip``.

    Raises :class:`attacks.bound_graph.NotCertifiable` (a ``ValueError``) naming the layer bound propagation does
    not cover. Bounds are computed in the model's dtype on its device, ``batch_size`` points at a time."""
    if method not in METHODS:
        raise ValueError(f"unknown certification method {method!r}; valid: {', '.join(METHODS)}")
    ball = Ball(eps, Norm(norm), clip)
    with frozen_eval(model):
        graph = traced(model, x[: min(len(x), 8)])
        margins, fell_back = [], set()
        for begin in range(0, len(x), batch_size):
            xb, yb = x[begin:begin + batch_size], y[begin:begin + batch_size]
            if method == "ibp":
                margins.append(ibp_margins(graph, xb, yb, eps, ball.clip))
                continue
            m, layers = crown_margins(graph, xb, yb, eps, ball.clip, ball.norm.value, PER_POINT_FLOATS)
            margins.append(m)
            fell_back.update(layers)
    joined = torch.cat(margins) if margins else torch.zeros((0, 0))
    return Certificate(joined, (joined > 0).all(1) if joined.numel() else torch.zeros(0, dtype=torch.bool),
                       method, tuple(n.label for n in graph.nodes if n.label in fell_back))

"""Interval bound propagation (Gowal et al. 2018, "On the effectiveness of interval bound propagation for training
verifiably robust models").

An input box ``[l, u]`` is pushed through the network layer by layer. For an affine layer ``z = W x + b`` the box is
written as a centre ``m = (u + l) / 2`` and a radius ``r = (u - l) / 2``; the image is the box with centre
``W m + b`` and radius ``|W| r`` (eq. 6 of the paper). Monotone layers (ReLU, max-pooling) map the two corners
``l`` and ``u`` directly. A residual addition adds the boxes. The bounds are sound for every input in the box and
cost two forward passes; they are loose for deep, naturally trained networks.

The threat ball enters as a box: for Linf, ``[x - eps, x + eps]`` intersected with the valid input range; an L2
ball of radius ``eps`` lies inside the same box, so the Linf box bounds it too (soundly, more loosely).
"""
from __future__ import annotations

import torch

from attacks.bound_graph import BoundGraph, Node

Tensor = torch.Tensor


def input_box(x: Tensor, eps: float, clip: tuple) -> tuple[Tensor, Tensor]:
    """The box every perturbation of size ``eps`` (Linf, or L2 inside it) stays in, within the clip range."""
    lo, hi = clip
    lo = lo.to(x) if isinstance(lo, Tensor) else torch.full_like(x[:1], float(lo))
    hi = hi.to(x) if isinstance(hi, Tensor) else torch.full_like(x[:1], float(hi))
    return torch.maximum(x - eps, lo), torch.minimum(x + eps, hi)


def node_interval(node: Node, boxes: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """The box of ``node``'s value given the boxes of its inputs."""
    if node.kind == "add":
        (l1, u1), (l2, u2) = (boxes[i] for i in node.inputs)
        return l1 + l2, u1 + u2
    lo, hi = boxes[node.inputs[0]]
    if node.kind in ("relu", "maxpool"):  # monotone: the corners map to the corners
        return node.fn(lo), node.fn(hi)
    assert node.abs_fn is not None
    centre, radius = node.fn((hi + lo) / 2), node.abs_fn((hi - lo) / 2)
    return centre - radius, centre + radius


def propagate(graph: BoundGraph, lo: Tensor, hi: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Lower and upper bounds of every node's value over the input box ``[lo, hi]`` (one batch of boxes),
    differentiable in the model's weights where autograd is on (IBP training, attacks/certified_training.py)."""
    boxes: list[tuple[Tensor, Tensor]] = []
    for node in graph.nodes:
        boxes.append((lo, hi) if node.kind == "input" else node_interval(node, boxes))
    return boxes


@torch.no_grad()
def interval_bounds(graph: BoundGraph, lo: Tensor, hi: Tensor) -> list[tuple[Tensor, Tensor]]:
    """:func:`propagate` without autograd (certification)."""
    return propagate(graph, lo, hi)


def margin_matrix(y: Tensor, num_classes: int) -> Tensor:
    """``C`` with rows ``e_y - e_j`` for every class ``j != y`` (shape N x (K-1) x K): ``C f(x) > 0`` everywhere
    in the ball means the point is certified correct there."""
    eye = torch.eye(num_classes, device=y.device)
    rows = eye[y].unsqueeze(1) - eye.unsqueeze(0)            # N x K x K, row j: e_y - e_j
    keep = ~torch.nn.functional.one_hot(y, num_classes).bool()
    return rows[keep].reshape(len(y), num_classes - 1, num_classes)


def box_margins(out_lo: Tensor, out_hi: Tensor, y: Tensor) -> Tensor:
    """Lower bounds of ``logit_y - logit_j`` (N x (K-1)) from a box of the logits: the true logit at its lowest
    against each other logit at its highest."""
    k = out_lo.shape[1]
    others = out_hi[~torch.nn.functional.one_hot(y, k).bool()].reshape(len(y), k - 1)
    return out_lo.gather(1, y[:, None]) - others


def worst_case_logits(out_lo: Tensor, out_hi: Tensor, y: Tensor) -> Tensor:
    """The logits at their worst for the true class over the box: ``logit_y`` at its lower bound, every other
    logit at its upper bound (Gowal et al. 2018, eq. 8: a cross-entropy of these bounds the worst-case one)."""
    return torch.where(torch.nn.functional.one_hot(y, out_lo.shape[1]).bool(), out_lo, out_hi)


@torch.no_grad()
def ibp_margins(graph: BoundGraph, x: Tensor, y: Tensor, eps: float, clip: tuple) -> Tensor:
    """Lower bounds of ``logit_y - logit_j`` (N x (K-1)) over the ball, from IBP's output box."""
    lo, hi = input_box(x, eps, clip)
    return box_margins(*interval_bounds(graph, lo, hi)[graph.output], y)

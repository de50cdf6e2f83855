"""CROWN: backward linear relaxation (Zhang et al. 2018, "Efficient neural network robustness certification with
general activation functions").

A lower bound of ``c^T f(x)`` over the ball is found by writing it as a linear function of the layer below and
substituting backwards to the input. Affine layers substitute exactly (``A <- A J``, the offset ``A g(0)`` joins the
bias: the vector-Jacobian product of the layer). A ReLU ``y = relu(z)`` with pre-activation bounds ``l <= z <= u``
is replaced by linear bounds (section 3.2 of the paper): stable neurons are the identity or zero; an unstable one
(``l < 0 < u``) is bounded above by the chord ``u (z - l) / (u - l)`` and below by ``alpha z`` with the adaptive
slope ``alpha = 1`` if ``u >= -l`` else ``0``; a positive coefficient takes the lower bound, a negative one the
upper. Max-pooling with non-overlapping windows is bounded below by the window element with the largest lower
bound and above by the same element when it dominates the window, else by the window's largest upper bound; any
other pooling is replaced by its interval. At the input the linear function is minimised in closed form over the
box (Linf) or, for L2, the better of the ball's dual-norm bound and the box's.

The pre-activation bounds each ReLU needs come from CROWN itself, layer by layer, where the cost fits
(``specs x widest layer`` floats per point, at most ``per_point_floats``), else from interval bound propagation;
every bound is intersected with IBP's, so CROWN is never looser than IBP. :func:`certify` returns which layers
fell back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from attacks.bound_graph import BoundGraph, Node
from attacks.ibp import box_margins, input_box, margin_matrix, node_interval

Tensor = torch.Tensor
PER_POINT_FLOATS = 2 ** 24   # at most ~64 MB of coefficients per point for one layer's CROWN bounds
CHUNK_FLOATS = 2 ** 23       # coefficients held at once (points x specs x widest layer); 2**26 measured 3x slower


@dataclass(frozen=True)
class Ball:
    """Where the input may move: ``norm`` ("linf" or "l2") of size ``eps`` around ``x``, inside ``[lo, hi]``."""

    x: Tensor
    eps: float
    norm: str
    lo: Tensor
    hi: Tensor

    def chunk(self, rows: slice) -> Ball:
        return Ball(self.x[rows], self.eps, self.norm, self.lo[rows], self.hi[rows])


def _sum_tail(t: Tensor) -> Tensor:
    return t.flatten(2).sum(-1)


def _affine_back(node: Node, a: Tensor, in_shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """``A J`` and ``A g(0)`` for the affine ``g`` of ``node``: the vector-Jacobian product of ``g`` at one input,
    applied to every row of ``A`` at once (the layer runs forward once, not once per spec)."""
    n, s = a.shape[:2]
    if n > 1 and a.stride(0) == 0:  # the same coefficients for every point (identity specs): substitute once
        moved, b = _affine_back(node, a[:1], in_shape)
        return moved.expand(n, *moved.shape[1:]), b.expand(n, -1)
    zero = torch.zeros((1, *in_shape), device=a.device, dtype=a.dtype)
    with torch.enable_grad():
        pulled = torch.func.vjp(node.fn, zero)
    offset, pullback = pulled[0], pulled[1]
    rows = a.reshape(n * s, 1, *offset.shape[1:])
    (grad,) = torch.func.vmap(pullback)(rows)
    return grad.reshape(n, s, *in_shape), _sum_tail(a * offset.detach().reshape(1, 1, *offset.shape[1:]))


def _relu_back(a: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    lo, hi = lo.unsqueeze(1), hi.unsqueeze(1)
    unstable = (lo < 0) & (hi > 0)
    chord = torch.where(unstable, hi / (hi - lo).clamp_min(1e-12), (lo >= 0).to(a.dtype))
    alpha = torch.where(unstable, (hi >= -lo).to(a.dtype), (lo >= 0).to(a.dtype))
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    return pos * alpha + neg * chord, _sum_tail(neg * torch.where(unstable, -chord * lo, torch.zeros_like(lo)))


def _pool_relaxable(node: Node) -> bool:
    p = node.pool
    k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
    return k == s and p["padding"] in (0, (0, 0)) and p["dilation"] in (1, (1, 1))


def _maxpool_back(node: Node, a: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    import torch.nn.functional as F  # noqa: N812
    p = node.pool
    k = p["kernel_size"]
    n, s = a.shape[:2]
    lo_max, idx = F.max_pool2d(lo, k, k, return_indices=True)          # the element with the largest lower bound
    chosen = F.max_unpool2d(torch.ones_like(lo_max), idx, k, k, output_size=lo.shape[-2:]).bool()
    rest_hi = F.max_pool2d(torch.where(chosen, torch.full_like(hi, -torch.inf), hi), k, k)
    dominant = (lo_max >= rest_hi).unsqueeze(1)
    top = F.max_pool2d(hi, k, k).unsqueeze(1)
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    linear = pos + torch.where(dominant, neg, torch.zeros_like(neg))
    flat_idx = idx.unsqueeze(1).expand(n, s, *idx.shape[1:]).reshape(n * s, *idx.shape[1:])
    a_in = F.max_unpool2d(linear.reshape(n * s, *linear.shape[2:]), flat_idx, k, k, output_size=lo.shape[-2:])
    return a_in.reshape(n, s, *lo.shape[1:]), _sum_tail(torch.where(dominant, torch.zeros_like(neg), neg * top))


def _concretize(a: Tensor, ball: Ball) -> Tensor:
    pos, neg = a.clamp(min=0), a.clamp(max=0)
    box = _sum_tail(pos * ball.lo.unsqueeze(1) + neg * ball.hi.unsqueeze(1))
    if ball.norm != "l2":
        return box
    centre = _sum_tail(a * ball.x.unsqueeze(1))
    return torch.maximum(box, centre - ball.eps * a.flatten(2).norm(dim=-1))


def backward_bound(graph: BoundGraph, boxes: list, start: int, a: Tensor, ball: Ball) -> Tensor:
    """The lower bound of ``sum(A * value(start))`` (one per spec: N x S) over the ball, given every earlier
    node's box in ``boxes`` (the pre-activation bounds the relaxations use)."""
    coeffs: dict[int, Tensor] = {start: a}
    bias = torch.zeros(a.shape[:2], device=a.device, dtype=a.dtype)
    for i in range(start, 0, -1):
        if i not in coeffs:
            continue
        a, node = coeffs.pop(i), graph.nodes[i]
        src = node.inputs[0]
        if node.kind == "affine":
            moved, b = _affine_back(node, a, graph.nodes[src].shape)
        elif node.kind == "relu":
            moved, b = _relu_back(a, *boxes[src])
        elif node.kind == "maxpool" and _pool_relaxable(node):
            moved, b = _maxpool_back(node, a, *boxes[src])
        elif node.kind == "maxpool":  # overlapping windows: bounded by the pooled interval
            lo, hi = boxes[i]
            bias = bias + _sum_tail(a.clamp(min=0) * lo.unsqueeze(1) + a.clamp(max=0) * hi.unsqueeze(1))
            continue
        else:  # add: the same coefficients reach both summands
            for j in node.inputs:
                coeffs[j] = coeffs[j] + a if j in coeffs else a
            continue
        bias = bias + b
        coeffs[src] = coeffs[src] + moved if src in coeffs else moved
    return bias + _concretize(coeffs[0], ball) if 0 in coeffs else bias


def _node_bounds(graph: BoundGraph, boxes: list, i: int, ball: Ball, lo: Tensor, hi: Tensor,
                 live: bool) -> tuple[Tensor, Tensor]:
    """``[lo, hi]`` (node ``i``'s interval) tightened by CROWN where it matters: the neurons unstable for some
    point (``lo < 0 < hi``), or with ``live`` every neuron that can be positive (its ReLU feeds a max-pool, whose
    relaxation reads the bounds of active neurons too); identity specs of both signs, in chunks of specs."""
    shape = graph.nodes[i].shape
    n = ball.x.shape[0]
    flat_lo, flat_hi = lo.reshape(n, -1).clone(), hi.reshape(n, -1).clone()
    todo = ((flat_hi > 0) & ((flat_lo < 0) | live)).any(0).nonzero().flatten()
    widest = max(math.prod(nd.shape) for nd in graph.nodes[: i + 1])
    step = max(1, CHUNK_FLOATS // max(1, 2 * n * widest))
    for begin in range(0, len(todo), step):
        rows = todo[begin:begin + step]
        eye = torch.zeros((len(rows), flat_lo.shape[1]), device=ball.x.device, dtype=ball.x.dtype)
        eye[torch.arange(len(rows)), rows] = 1.0
        specs = torch.cat([eye, -eye]).reshape(1, 2 * len(rows), *shape).expand(n, -1, *shape)
        both = backward_bound(graph, boxes, i, specs, ball)
        flat_lo[:, rows] = torch.maximum(flat_lo[:, rows], both[:, :len(rows)])
        flat_hi[:, rows] = torch.minimum(flat_hi[:, rows], -both[:, len(rows):])
    return flat_lo.reshape(lo.shape), flat_hi.reshape(hi.shape)


def crown_boxes(graph: BoundGraph, ball: Ball, per_point_floats: int = PER_POINT_FLOATS) -> tuple[list, list[str]]:
    """Every node's box, ReLU pre-activations refined by CROWN where the cost fits; and the layers left to IBP."""
    needs = {nd.inputs[0] for nd in graph.nodes if nd.kind == "relu"}
    users = graph.consumers()
    pooled = {nd.inputs[0] for j, nd in enumerate(graph.nodes)
              if nd.kind == "relu" and any(graph.nodes[c].kind == "maxpool" for c in users[j])}
    boxes: list = []
    fell_back: list[str] = []
    for i, node in enumerate(graph.nodes):
        if node.kind == "input":
            boxes.append((ball.lo, ball.hi))
            continue
        lo, hi = node_interval(node, boxes)
        upstream_nonlinear = any(graph.nodes[j].kind in ("relu", "maxpool") for j in range(i))
        overlapping_pool = node.kind == "maxpool" and not _pool_relaxable(node)
        if i in needs and upstream_nonlinear and not overlapping_pool:
            widest = max(math.prod(nd.shape) for nd in graph.nodes[: i + 1])
            if math.prod(node.shape) * widest <= per_point_floats:
                lo, hi = _node_bounds(graph, boxes, i, ball, lo, hi, i in pooled)
            else:
                fell_back.append(node.label)
        boxes.append((lo, hi))
    return boxes, fell_back


@torch.no_grad()
def crown_margins(graph: BoundGraph, x: Tensor, y: Tensor, eps: float, clip: tuple, norm: str = "linf",
                  per_point_floats: int = PER_POINT_FLOATS) -> tuple[Tensor, list[str]]:
    """Lower bounds of ``logit_y - logit_j`` (N x (K-1)) over the ball, never below IBP's; and the layers whose
    pre-activation bounds came from IBP (too wide for CROWN within ``per_point_floats``)."""
    lo, hi = input_box(x, eps, clip)
    ball = Ball(x, eps, norm, lo.expand_as(x), hi.expand_as(x))
    boxes, fell_back = crown_boxes(graph, ball, per_point_floats)
    out = graph.output
    k = graph.nodes[out].shape[0]
    c = margin_matrix(y, k).to(x.dtype)
    linear = backward_bound(graph, boxes, out, c, ball)
    out_lo, out_hi = boxes[out]
    return torch.maximum(linear, box_margins(out_lo, out_hi, y)), fell_back

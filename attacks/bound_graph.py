"""A model as a graph that bound propagation can walk: the shared front end of IBP (attacks/ibp.py) and CROWN
(attacks/crown.py).

``torch.fx`` traces the model into nodes of four kinds:

- **affine** ``g(x) = J x + g(0)``: Linear, Conv1d/2d, BatchNorm in eval mode, average pooling, Flatten, view/reshape,
  Identity, Dropout (eval), and multiplying, dividing, adding or subtracting a constant (the input normalisation);
  each knows ``g`` and ``|J|`` applied to a non-negative radius, which is all interval arithmetic needs, and its
  linear back-substitution is the vector-Jacobian product of ``g``;
- **relu**; **maxpool**; **add** (a residual connection: two graph inputs summed).

Anything else makes the model "not certifiable: <layer>" (:class:`NotCertifiable`), never a wrong bound: after
tracing, the graph is evaluated on a probe batch and must reproduce the model's logits, or it is refused too.
"""
from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import fx, nn

Tensor = torch.Tensor
PROBE_TOLERANCE = 1e-4  # relative: the traced graph must reproduce the model's logits on the probe batch


class NotCertifiable(ValueError):
    """The model holds a layer (or a construct) that bound propagation does not cover; the message names it."""


@dataclass
class Node:
    """One step of the traced model. ``inputs`` are earlier nodes' indices; ``fn`` computes the value."""

    kind: str                                   # "input", "affine", "relu", "maxpool", "add"
    label: str
    inputs: tuple[int, ...]
    fn: Callable[..., Tensor]
    abs_fn: Callable[[Tensor], Tensor] | None = None   # affine: |J| r for r >= 0 (no offset)
    pool: dict = field(default_factory=dict)           # maxpool: kernel_size, stride, padding, dilation
    shape: tuple[int, ...] = ()                        # the value's shape for one example, set by the probe


@dataclass
class BoundGraph:
    nodes: list[Node]

    @property
    def output(self) -> int:
        return len(self.nodes) - 1

    def run(self, x: Tensor) -> list[Tensor]:
        """Every node's value for the batch ``x`` (the model's forward, node by node)."""
        values: list[Tensor] = []
        for node in self.nodes:
            values.append(x if node.kind == "input" else node.fn(*(values[i] for i in node.inputs)))
        return values

    def consumers(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.nodes]
        for i, node in enumerate(self.nodes):
            for j in node.inputs:
                out[j].append(i)
        return out


def _linear_abs(m: nn.Linear) -> Callable[[Tensor], Tensor]:
    """``|W| r`` with the layer's current weights (read at each call: IBP training updates them between calls and
    differentiates through them; under ``no_grad`` nothing is recorded)."""
    return lambda r: F.linear(r, m.weight.abs())


def _conv_abs(m: nn.Conv1d | nn.Conv2d) -> Callable[[Tensor], Tensor]:
    conv = F.conv2d if isinstance(m, nn.Conv2d) else F.conv1d
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        raise NotCertifiable(f"not certifiable: {type(m).__name__} with padding {m.padding!r}/{m.padding_mode}")
    return lambda r: conv(r, m.weight.abs(), None, m.stride, m.padding, m.dilation, m.groups)


def _batchnorm(m: nn.modules.batchnorm._BatchNorm) -> tuple[Callable, Callable]:
    if m.training or m.running_mean is None or m.running_var is None:
        raise NotCertifiable(f"not certifiable: {type(m).__name__} without running statistics (eval mode)")
    scale = (m.weight.detach() if m.weight is not None else 1.0) / torch.sqrt(m.running_var + m.eps)
    shift = (m.bias.detach() if m.bias is not None else 0.0) - m.running_mean * scale

    def view(t: Tensor, like: Tensor) -> Tensor:
        return t.reshape(1, -1, *([1] * (like.dim() - 2)))
    return (lambda x: x * view(scale, x) + view(shift, x)), (lambda r: r * view(scale.abs(), r))


def _positive_linear(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """|J| r of a linear map with non-negative weights and no offset (pooling, reshaping) is the map itself."""
    return fn


def _module_node(m: nn.Module, label: str, src: int) -> Node:
    if isinstance(m, nn.Linear):
        return Node("affine", label, (src,), m, _linear_abs(m))
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return Node("affine", label, (src,), m, _conv_abs(m))
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        fn, abs_fn = _batchnorm(m)
        return Node("affine", label, (src,), fn, abs_fn)
    if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)):
        return Node("affine", label, (src,), m, _positive_linear(m))
    if isinstance(m, nn.ReLU):
        return Node("relu", label, (src,), F.relu)
    if isinstance(m, nn.MaxPool2d):
        if m.ceil_mode or m.return_indices:
            raise NotCertifiable(f"not certifiable: {label} (MaxPool2d with ceil_mode/return_indices)")
        pool: dict[str, Any] = dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, dilation=m.dilation)
        return Node("maxpool", label, (src,), lambda x: F.max_pool2d(x, **pool), pool=pool)
    raise NotCertifiable(f"not certifiable: {label} ({type(m).__name__})")


def _constant(arg, gm: fx.GraphModule) -> Tensor | float | None:
    if isinstance(arg, (int, float)) and not isinstance(arg, bool):
        return float(arg)
    if isinstance(arg, fx.Node) and arg.op == "get_attr":
        value = gm
        for part in str(arg.target).split("."):
            value = getattr(value, part)
        return value.detach() if isinstance(value, Tensor) else None
    return None


_CONST_OPS = {operator.mul: "mul", torch.mul: "mul", "mul": "mul", operator.truediv: "div", torch.div: "div",
              "div": "div", operator.add: "add", torch.add: "add", "add": "add", operator.sub: "sub",
              torch.sub: "sub", "sub": "sub"}


def _arith_node(op: str, label: str, args: tuple, index: dict, gm: fx.GraphModule) -> Node:
    graph_args = [a for a in args if isinstance(a, fx.Node) and a.op != "get_attr"]
    if op == "add" and len(graph_args) == 2 and len(args) == 2:
        return Node("add", label, (index[graph_args[0].name], index[graph_args[1].name]), operator.add)
    if len(graph_args) != 1 or len(args) != 2:
        raise NotCertifiable(f"not certifiable: {label} ({op} of {len(graph_args)} model values)")
    src_first = args[0] is graph_args[0]
    c = _constant(args[1] if src_first else args[0], gm)
    if c is None:
        raise NotCertifiable(f"not certifiable: {label} ({op} by a non-constant)")
    src = index[graph_args[0].name]
    if op in ("add", "sub"):
        sign = -1.0 if (op == "sub" and src_first) else 1.0
        flip = -1.0 if (op == "sub" and not src_first) else 1.0  # c - x
        return Node("affine", label, (src,), lambda x: flip * x + sign * c, lambda r: r)
    if op == "div" and not src_first:
        raise NotCertifiable(f"not certifiable: {label} (a constant divided by a model value)")
    k = (1.0 / c) if op == "div" else c
    return Node("affine", label, (src,), lambda x: x * k, lambda r: r * (k.abs() if isinstance(k, Tensor) else abs(k)))


def _is_batch_size(arg: Any) -> bool:
    """``x.size(0)`` or ``x.shape[0]`` in the traced graph."""
    if not isinstance(arg, fx.Node):
        return False
    if arg.op == "call_method" and arg.target == "size":
        return bool(tuple(arg.args[1:]) == (0,) or arg.kwargs.get("dim") == 0)
    if not (arg.op == "call_function" and arg.target is operator.getitem and isinstance(arg.args[0], fx.Node)):
        return False
    base = arg.args[0]
    shape_attr = base.op == "call_function" and base.target is getattr and base.args[1] == "shape"
    whole_size = base.op == "call_method" and base.target == "size" and len(base.args) == 1
    return bool(arg.args[1] == 0) and bool(shape_attr or whole_size)


def _is_size_query(node: fx.Node) -> bool:
    return (node.op == "call_method" and node.target == "size") or (
        node.op == "call_function" and (node.target is getattr or (
            node.target is operator.getitem and isinstance(node.args[0], fx.Node)
            and _is_size_query(node.args[0]))))


def _function_node(node: fx.Node, index: dict, gm: fx.GraphModule) -> Node:
    label, target = node.name, node.target
    args: tuple[Any, ...] = tuple(node.args)
    if target in (F.relu, torch.relu) or target == "relu":
        return Node("relu", label, (index[args[0].name],), F.relu)
    if target in (torch.flatten, "flatten", "view", "reshape", torch.reshape):
        rest = args[1:]
        kwargs: dict[str, Any] = dict(node.kwargs)
        if target in (torch.flatten, "flatten"):
            return Node("affine", label, (index[args[0].name],), lambda x: torch.flatten(x, *rest, **kwargs),
                        lambda r: torch.flatten(r, *rest, **kwargs))
        sizes = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
        batch_first = bool(sizes) and _is_batch_size(sizes[0])
        tail = tuple(sizes[1:]) if batch_first else tuple(sizes)
        if any(isinstance(a, fx.Node) for a in tail):
            raise NotCertifiable(f"not certifiable: {label} (a reshape to a traced size)")
        if batch_first:  # x.view(x.size(0), -1): the batch stays, the rest is fixed
            return Node("affine", label, (index[args[0].name],), lambda x: x.reshape(x.shape[0], *tail),
                        lambda r: r.reshape(r.shape[0], *tail))
        return Node("affine", label, (index[args[0].name],), lambda x: x.reshape(*tail),
                    lambda r: r.reshape(*tail))
    if target in _CONST_OPS and not node.kwargs:
        return _arith_node(_CONST_OPS[target], label, args, index, gm)
    name = getattr(target, "__name__", str(target))
    raise NotCertifiable(f"not certifiable: {label} ({name})")


def trace(model: nn.Module) -> BoundGraph:
    """The model's graph, or :class:`NotCertifiable` naming the first layer bound propagation does not cover."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - data-dependent control flow, ScriptModules, exported programs...
        raise NotCertifiable(f"not certifiable: the model cannot be traced ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    nodes: list[Node] = []
    index: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "get_attr" or _is_size_query(n):  # constants and shape queries are read where they are used
            continue
        if n.op == "placeholder":
            if nodes:
                raise NotCertifiable("not certifiable: the model takes more than one input")
            made = Node("input", n.name, (), lambda x: x)
        elif n.op == "output":
            out = n.args[0]
            if not isinstance(out, fx.Node):
                raise NotCertifiable("not certifiable: the model returns a structure, not one logits tensor")
            if index[out.name] != len(nodes) - 1:  # logits computed earlier than the last node: re-point
                nodes.append(Node("affine", "output", (index[out.name],), lambda x: x, lambda r: r))
            break
        elif n.op == "call_module":
            made = _module_node(gm.get_submodule(str(n.target)), n.name, index[n.args[0].name])
        elif n.op in ("call_function", "call_method"):
            made = _function_node(n, index, gm)
        else:
            raise NotCertifiable(f"not certifiable: {n.name} ({n.op})")
        index[n.name] = len(nodes)
        nodes.append(made)
    return BoundGraph(nodes)


def traced(model: nn.Module, probe: Tensor) -> BoundGraph:
    """:func:`trace`, checked: evaluated on ``probe`` the graph reproduces the model's logits, and each node's
    per-example shape is recorded (back-substitution needs it)."""
    graph = trace(model)
    with torch.no_grad():
        values = graph.run(probe)
        want = model(probe)
    got = values[graph.output]
    if not isinstance(want, Tensor) or got.shape != want.shape or not torch.allclose(
            got, want, rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE * float(want.abs().max().clamp_min(1.0))):
        raise NotCertifiable("not certifiable: the traced graph does not reproduce the model's output (hooks or "
                             "control flow outside the traced forward)")
    for node, value in zip(graph.nodes, values, strict=True):
        node.shape = tuple(value.shape[1:])
    return graph

"""Shared pieces of the attacks: the threat ball, projection, the loss gradient, restarts and model-mode guarding."""
from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass

import torch

from attacks.losses import ce


class Norm(str, enum.Enum):
    """Threat-model norm of the perturbation ``x_adv - x``."""

    LINF = "linf"
    L2 = "l2"

    @property
    def label(self) -> str:
        """How prose writes it: "Linf", "L2"."""
        return "L" + self.value[1:]


@dataclass(frozen=True)
class Ball:
    """The threat model of one attack call: perturbations of ``norm`` size at most ``eps`` (input units), adversarial
    inputs kept inside ``clip`` (two floats, or two tensors shaped like one input for per-feature bounds)."""

    eps: float
    norm: Norm = Norm.LINF
    clip: tuple = (0.0, 1.0)

    def __post_init__(self):
        object.__setattr__(self, "norm", Norm(self.norm))


@dataclass(frozen=True)
class AttackOutput:
    """Adversarial examples and the cost of finding them.

    x_adv: tensor shaped like the input, inside the clip range and the eps-ball.
    example_passes: forward+backward passes summed over examples (a batch of 512 at 10 steps = 5,120).
    forward_passes: forward-only passes summed over examples (score-based queries, success checks).
    """

    x_adv: torch.Tensor
    example_passes: int
    forward_passes: int = 0


@contextlib.contextmanager
def frozen_eval(model: torch.nn.Module):
    """Put ``model`` in eval mode with gradients off for its parameters; restore both afterwards.

    The attack never mutates the model: parameters are not updated and their ``requires_grad`` flags and the
    train/eval mode are restored on exit, even on error.
    """
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags, strict=False):
            p.requires_grad_(f)
        model.train(was_training)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights live (its first parameter's, else its first buffer's, else the CPU)."""
    for t in model.parameters():
        return t.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def to_memory_format(model: torch.nn.Module, memory_format: torch.memory_format) -> None:
    """``model.to(memory_format=...)`` in place: torch accepts the keyword at run time, its stubs' overloads lack it."""
    model.to(memory_format=memory_format)  # type: ignore[call-overload]  # missing from torch's Module.to stubs


def loss_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
                  loss=ce):
    """The attacks' one loss-and-gradient step: the per-example ``loss(logits, y, target)`` (an objective to
    ascend, attacks/losses.py), the gradient of its sum w.r.t. the input, and the logits (all detached)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    value = loss(logits, y, target)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad, logits.detach()


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def ascent_direction(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Steepest-ascent direction of unit size in ``norm``: sign for Linf, normalised gradient for L2."""
    if norm is Norm.LINF:
        return grad.sign()
    return grad / _flat_norm(grad).clamp_min(1e-12)


def project(delta: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Project a perturbation onto the eps-ball of ``norm``."""
    if norm is Norm.LINF:
        return delta.clamp(-eps, eps)
    factor = (eps / _flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor


def draw(kind: str, shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Random numbers from ``generator`` on the generator's own device (no host round trip when it lives on the
    GPU; the same stream as before on the CPU), as ``like``'s device and dtype. kind: "rand" or "randn"."""
    device = generator.device if generator is not None else like.device
    fn = torch.rand if kind == "rand" else torch.randn
    return fn(shape, generator=generator, device=device).to(like.device, like.dtype)


def random_start(x: torch.Tensor, eps: float, norm: Norm, generator: torch.Generator | None) -> torch.Tensor:
    """A uniformly random point of the eps-ball (Linf: uniform cube; L2: uniform in the ball)."""
    if norm is Norm.LINF:
        return (2 * draw("rand", x.shape, generator, x) - 1) * eps
    g = draw("randn", x.shape, generator, x)
    g = g / _flat_norm(g).clamp_min(1e-12)
    d = x[0].numel()
    r = draw("rand", (x.shape[0],), generator, x) ** (1.0 / d)
    return g * (r * eps).view(-1, *([1] * (x.dim() - 1)))


def compact_every(device: torch.device) -> int:
    """Steps between dropping broken examples under early stop: every step on a CPU (reading the mask costs
    nothing), every 4 on an accelerator (each drop waits for the device; masked updates in between do not)."""
    return 1 if device.type == "cpu" else 4


def attack_with_restarts(model, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, restarts: int,
                         run) -> AttackOutput:
    """Run ``run(xs, ys, ts) -> (x kept, broken mask or None, passes)`` from fresh starts, each time only on the
    examples no earlier start broke; per example the broken point (or the last start's kept point) is returned."""
    x0 = x.detach()
    if restarts <= 1:  # one start: its kept points as they are (no mask read, no host synchronisation)
        with frozen_eval(model):
            xa, _, passes = run(x0, y, target)
        return AttackOutput(x_adv=xa.detach(), example_passes=passes)
    best = x0.clone()
    pending = torch.arange(x0.shape[0], device=x0.device)
    passes = 0
    with frozen_eval(model):
        for _ in range(max(restarts, 1)):
            xa, fooled, n = run(x0[pending], y[pending], None if target is None else target[pending])
            passes += n
            best[pending] = xa  # the kept iterate for the still-unbroken ones, the adversarial one for the rest
            pending = pending[~fooled]
            if pending.numel() == 0:
                break
    return AttackOutput(x_adv=best.detach(), example_passes=passes)


def clip_to(x: torch.Tensor, clip: tuple[float, float] | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    if isinstance(clip[0], torch.Tensor):  # per-feature bounds (the check narrows ``clip`` to the tensor pair)
        lo, hi = clip
        return torch.maximum(torch.minimum(x, hi), lo)
    return x.clamp(*clip)

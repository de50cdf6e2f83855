"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search", arXiv:1912.00049), Linf and L2, batched on the model's device.

Score-based: it only reads the model's logits, so gradient masking does not stop it. Each iteration proposes, per
example, a change of the perturbation inside one random square window and keeps it if it lowers the margin loss
z_y - max_{j != y} z_j; an example is done (and queried no more) once the margin is negative. The window covers a
share p of the pixels, p halving on a fixed schedule of the query budget (from ``p_init``).

Linf: initialised with vertical stripes of +-eps (one sign per channel and column); a proposal sets the whole window
of each channel to one random sign times eps, redrawn when it would change nothing. L2: initialised with a grid of
signed "bumps" (two opposite-signed pseudo-Gaussian halves per square) scaled to norm eps; a proposal moves the
perturbation's energy of a second window into the first window, as a fresh bump added to the first window's old
content, so the norm stays at eps.

Parameters (``SquareParams``): queries, p_init, restarts. Shapes: x (N, C, H, W) in the clip range, y (N,) int64
true labels. Cost: one forward per example per query (``forward_passes``), no backward; ``queries`` counts the
budget. The queries go to the model's fast forward twin where it reproduces the model (attacks/inference.py); a
point counts as fooled only once the model itself misclassifies it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import AttackOutput, Ball, Norm, clip_to, frozen_eval
from attacks.inference import scorer
from attacks.spec import AttackSpec, register, setting

P_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
              (8000, 256), (10000, 512))  # (until this iteration of a 10,000-query run, divide p_init by)
COMPACT_EVERY = 8


@dataclass(frozen=True)
class SquareParams:
    """queries: the budget per example and run; p_init: the window's initial share of the pixels; restarts: fresh
    runs on the examples still robust (AutoAttack's "plus" uses 5)."""

    queries: int = setting(5000, "square_queries")
    p_init: float = setting(0.8, "square_p_init")
    restarts: int = setting(1, "square_restarts")

    def describe(self, label: str) -> str:
        return (f"{label}, {self.queries:,} queries x {self.restarts} restart(s), p_init {self.p_init:g}, "
                f"margin loss, score-based (no gradients)")

    def cost(self) -> tuple[float, float]:
        return 0.0, float(self.queries * self.restarts)


def p_at(p_init: float, i: int, queries: int) -> float:
    """The share of pixels a window covers at iteration ``i``, halved at fixed points of the budget."""
    it = int(i / max(queries, 1) * 10000)
    for until, div in P_SCHEDULE:
        if it <= until:
            return p_init / div
    return p_init


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y - max_{j != y} z_j: negative when misclassified."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return z_y - other


def _signed_bump(s: int, transpose: bool, device, dtype) -> torch.Tensor:
    """Two pseudo-Gaussian halves of opposite sign (top +, bottom -), unit L2 norm, optionally transposed."""
    out = torch.zeros(s, s, device=device, dtype=dtype)
    top = s // 2
    if top:
        out[:top] = _rect_bump(top, s, device, dtype)
    out[top:] = -_rect_bump(s - top, s, device, dtype)
    out = out / out.norm().clamp_min(1e-12)
    return out.T if transpose else out


def _rect_bump(a: int, b: int, device, dtype) -> torch.Tensor:
    """The pseudo-Gaussian on an a x b rectangle (centred concentric rectangles), unit L2 norm."""
    r = torch.arange(a, device=device, dtype=dtype)[:, None] - (a // 2)
    c = torch.arange(b, device=device, dtype=dtype)[None, :] - (b // 2)
    ring = torch.maximum(r.abs(), c.abs()).long()
    n = max(a // 2, b // 2) + 1  # the squares grow to the rectangle's larger half-size
    weights = (1.0 / (torch.arange(n, device=device, dtype=dtype) + 1) ** 2).flip(0).cumsum(0).flip(0)
    out = weights[ring.clamp(max=n - 1)]
    return out / out.norm()


def _window_index(top: torch.Tensor, left: torch.Tensor, s: int, w: int) -> torch.Tensor:
    """(N, s*s) flat pixel indices of each example's s x s window at (top, left) in an image of width w."""
    ar = torch.arange(s, device=top.device)
    return ((top[:, None, None] + ar[None, :, None]) * w + left[:, None, None] + ar[None, None, :]).flatten(1)


def _randint(high: int, n: int, gen, device) -> torch.Tensor:
    return torch.randint(0, max(high, 1), (n,), generator=gen, device=gen.device if gen else device).to(device)


def _signs(shape, gen, like) -> torch.Tensor:
    dev = gen.device if gen is not None else like.device
    return (torch.randint(0, 2, shape, generator=gen, device=dev).to(like.device, like.dtype) * 2 - 1)


def _window_clip(clip, idx, c):
    """The clip range restricted to the windows (per-pixel bounds are gathered like the pixels)."""
    lo, hi = clip
    if isinstance(lo, torch.Tensor) and lo.numel() > 1:
        flat = lambda b: b.reshape(1, c, -1).expand(idx.shape[0], c, -1)  # noqa: E731
        return torch.gather(flat(lo), 2, idx), torch.gather(flat(hi), 2, idx)
    return clip


def _linf_step(x, best, eps, s, clip, gen):
    n, c, h, w = x.shape
    delta = (best - x).reshape(n, c, h * w)
    idx = _window_index(_randint(h - s, n, gen, x.device), _randint(w - s, n, gen, x.device), s, w)
    idx = idx[:, None, :].expand(n, c, s * s)
    old = torch.gather(best.reshape(n, c, h * w), 2, idx)
    x_win, win_clip = torch.gather(x.reshape(n, c, h * w), 2, idx), _window_clip(clip, idx, c)
    new = _signs((n, c, 1), gen, x) * eps
    for _ in range(4):  # a proposal that changes nothing wastes a query: redraw those
        same = (clip_to(x_win + new, win_clip) - old).abs().amax((1, 2)) < 1e-7
        new = torch.where(same[:, None, None], _signs((n, c, 1), gen, x) * eps, new)
    delta = delta.scatter(2, idx, new.expand(n, c, s * s))
    return clip_to(x + delta.view_as(x), clip)


def _l2_init(x, eps, gen):
    n, c, h, w = x.shape
    s = max(h // 5, 1)
    start = (h - 5 * s) // 2
    delta = torch.zeros_like(x)
    for i in range(h // s):
        for j in range(w // s):
            top, left = start + i * s, start + j * s
            if top + s <= h and left + s <= w and top >= 0 and left >= 0:
                transpose = bool(torch.rand((), generator=gen, device=gen.device if gen else x.device) > 0.5)
                bump = _signed_bump(s, transpose, x.device, x.dtype)
                delta[:, :, top:top + s, left:left + s] += bump * _signs((n, c, 1, 1), gen, x)
    return delta * (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).view(n, 1, 1, 1)


def _l2_step(x, best, eps, s, clip, gen):
    n, c, h, w = x.shape
    delta = (best - x).reshape(n, c, h * w)
    i1 = _window_index(_randint(h - s, n, gen, x.device), _randint(w - s, n, gen, x.device), s, w)
    i2 = _window_index(_randint(h - s, n, gen, x.device), _randint(w - s, n, gen, x.device), s, w)
    e1, e2 = i1[:, None, :].expand(n, c, s * s), i2[:, None, :].expand(n, c, s * s)
    m1 = torch.zeros(n, 1, h * w, device=x.device, dtype=x.dtype).scatter(2, i1[:, None, :], 1.0)
    m12 = m1.scatter(2, i2[:, None, :], 1.0)
    norm_win1 = (delta * m1).norm(dim=2, keepdim=True)
    norm_img = delta.flatten(1).norm(dim=1).view(n, 1, 1)
    norm_both = (delta * m12).norm(dim=2, keepdim=True)
    transpose = bool(torch.rand((), generator=gen, device=gen.device if gen else x.device) > 0.5)
    fresh = _signed_bump(s, transpose, x.device, x.dtype).flatten()[None, None, :] * _signs((n, c, 1), gen, x)
    new = fresh + torch.gather(delta, 2, e1) / (1e-10 + norm_win1)
    budget = ((eps ** 2 - norm_img ** 2).clamp_min(0) / c + norm_both ** 2).sqrt()
    new = new / new.norm(dim=2, keepdim=True).clamp_min(1e-12) * budget
    delta = delta.scatter(2, e2, torch.zeros_like(new)).scatter(2, e1, new)
    delta = delta.view_as(x)
    return clip_to(x + delta * (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).view(n, 1, 1, 1), clip)


def square_attack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball,
                  params: SquareParams = SquareParams(), *, generator: torch.Generator | None = None) -> AttackOutput:
    """Square at budget eps with ``params.queries`` per example and run, ``params.restarts`` runs."""
    if x.dim() != 4:
        raise ValueError("the Square attack perturbs images (N, C, H, W)")
    out = x.detach().clone()
    pending = torch.arange(x.shape[0], device=x.device)
    forwards = 0
    for _ in range(max(params.restarts, 1)):
        adv, fooled, f = _square_run(model, x[pending], y[pending], ball, params, generator)
        forwards += f
        out[pending] = adv
        pending = pending[~fooled]
        if pending.numel() == 0:
            break
    return AttackOutput(x_adv=out, example_passes=0, forward_passes=forwards)


def _square_run(model, x, y, ball: Ball, params: SquareParams, generator):
    """One run: (best points, fooled mask, forward passes)."""
    eps, norm, clip, queries, p_init = ball.eps, ball.norm, ball.clip, params.queries, params.p_init
    n, c, h, w = x.shape
    x0 = x.detach()
    with frozen_eval(model), torch.no_grad():
        if norm is Norm.LINF:
            best = clip_to(x0 + eps * _signs((n, c, 1, w), generator, x0), clip)
        else:
            best = clip_to(x0 + _l2_init(x0, eps, generator), clip)
        fast = scorer(model, x0)  # forward-only queries: the fast twin where it agrees (attacks/inference.py)
        loss = margin(fast(best).float(), y)
        forwards, confirmed = n, torch.zeros(n, dtype=torch.bool, device=x.device)
        active = torch.arange(n, device=x.device)
        for i in range(queries - 1):
            if i % COMPACT_EVERY == 0:  # drop the examples already fooled (one host synchronisation)
                if fast is not model:
                    forwards += _confirm(model, best, y, loss, confirmed)
                active = active[loss[active] > 0]
                if active.numel() == 0:
                    break
            xa, ba = x0[active], best[active]
            p = p_at(p_init, i, queries)
            if norm is Norm.LINF:
                s = min(max(int(round((p * c * h * w / c) ** 0.5)), 1), h - 1)
                prop = _linf_step(xa, ba, eps, s, clip, generator)
            else:
                s = max(int(round((p * c * h * w / c) ** 0.5)), 3)
                s = min(s + (1 - s % 2), h - 1)
                prop = _l2_step(xa, ba, eps, s, clip, generator)
            new_loss = margin(fast(prop).float(), y[active])
            forwards += active.numel()
            better = (new_loss < loss[active]) & (loss[active] > 0)
            best[active] = torch.where(better.view(-1, 1, 1, 1), prop, ba)
            loss[active] = torch.where(better, new_loss, loss[active])
        if fast is not model:
            forwards += _confirm(model, best, y, loss, confirmed)
    return best.detach(), loss <= 0, forwards


def _confirm(model, best, y, loss, confirmed) -> int:
    """The model itself checks the points the fast twin found fooled; one it does not misclassify gets its own
    (positive) margin back and is attacked further. Returns the forwards spent."""
    rows = ((loss <= 0) & ~confirmed).nonzero().flatten()
    if rows.numel() == 0:
        return 0
    own = margin(model(best[rows]).float(), y[rows])
    loss[rows] = torch.where(own <= 0, loss[rows], own)
    confirmed[rows] = own <= 0
    return rows.numel()


square = register(AttackSpec("square", "Square", square_attack, SquareParams, images_only=True, score_based=True))

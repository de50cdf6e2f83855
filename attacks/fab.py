"""Fast Adaptive Boundary attack, FAB (Croce & Hein, 2020, "Minimally distorted adversarial examples with a fast
adaptive boundary attack", arXiv:1907.02044), Linf and L2, in its targeted form FAB-T as AutoAttack runs it.

FAB looks for the smallest perturbation that changes the decision. At the current iterate x_k it linearises the
boundary between the true class y and a target class t, {z: f_t(x_k) - f_y(x_k) + <grad(f_t - f_y), z - x_k> = 0},
and computes the minimal-norm steps onto that hyperplane, inside the valid box, from x_k (delta_k) and from the
original point x_0 (delta_0). The next iterate mixes the two, biased towards x_0 to keep the perturbation small:
    alpha = min(|delta_k| / (|delta_k| + |delta_0|), alpha_max)
    x_{k+1} = clip((1 - alpha) (x_k + eta delta_k) + alpha (x_0 + eta delta_0))      (eta = 1.05 overshoots)
and once x_{k+1} is misclassified, it is pulled back towards x_0: x_{k+1} = (1 - beta) x_0 + beta x_{k+1}. The best
(smallest) misclassified point over the iterations and the targets is kept. The projection onto hyperplane and box
is solved exactly: the optimal step is delta_i = sign(w_i) min(t, r_i) (Linf) or w_i min(l, l_i) (L2), and the
scalar t or l comes from a sort of the breakpoints r_i, l_i.

For robust accuracy at eps a point counts as broken when FAB's perturbation is at most eps; x_adv is that point,
else the original. FAB-T: the ``n_targets`` classes ranked highest after y on the clean input, in turn, later
targets attacking only the points still robust; cost per target ``steps`` x (one forward+backward, one forward).
Untargeted FAB steps towards the nearest linearised boundary among all classes (K backward passes per step).

Parameters (``FABParams``): steps, restarts (later runs start from a random point about eps / 2 away); FAB-T adds
n_targets. Shapes: x (N, ...) in the clip range, y (N,) int64 true labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import AttackOutput, Ball, Norm, clip_to, compact_every, draw, frozen_eval
from attacks.inference import scorer
from attacks.spec import AttackSpec, MultiTarget, register, setting
from attacks.targeted import Runs, confirm, ranked_runs

ALPHA_MAX, ETA, BETA = 0.1, 1.05, 0.9


@dataclass(frozen=True)
class FABParams:
    """steps per run; restarts: runs per boundary, the later ones from a random start of size about eps / 2."""

    steps: int = setting(100, "fab_steps")
    restarts: int = setting(1, "fab_restarts")

    def describe(self, label: str) -> str:
        return (f"{label}, {self.steps} steps x {self.restarts} restart(s), minimal-norm boundary steps "
                f"(alpha_max {ALPHA_MAX:g}, eta {ETA:g}, beta {BETA:g})")

    def cost(self) -> tuple[float, float]:
        return float(3 * self.steps * self.restarts), float(self.steps * self.restarts)


@dataclass(frozen=True)
class FABTParams(MultiTarget, FABParams):
    """FAB's, and n_targets: the classes ranked highest after y, attacked in turn."""

    n_targets: int = setting(9, "n_targets")
    max_rows: int = 0  # the largest batch of runs (0: grown to suit the device; the audit's grid passes its batch size)



def _min_threshold(a: torch.Tensor, r: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per row, the smallest t >= 0 with sum_i a_i min(t, r_i) = b (a, r >= 0; b >= 0), or max r_i when even that
    falls short (the box cannot reach the hyperplane: the best effort)."""
    r_sorted, order = r.sort(dim=1)
    a_sorted = a.gather(1, order)
    below = torch.cumsum(a_sorted * r_sorted, 1) - a_sorted * r_sorted   # sum_{j<k} a_j r_j
    tail = a_sorted.flip(1).cumsum(1).flip(1)                             # sum_{j>=k} a_j
    reach = below + r_sorted * tail                                       # g(r_(k)), nondecreasing in k
    k = (reach < b[:, None]).sum(1).clamp(max=r.shape[1] - 1)
    t = (b - below.gather(1, k[:, None]).squeeze(1)) / tail.gather(1, k[:, None]).squeeze(1).clamp_min(1e-12)
    return torch.minimum(t.clamp_min(0), r_sorted[:, -1])


def project(point: torch.Tensor, w: torch.Tensor, b: torch.Tensor, lo, hi, norm: Norm) -> torch.Tensor:
    """The minimal-``norm`` step d with <w, d> = b and lo <= point + d <= hi (rows flattened)."""
    n = point.shape[0]
    p, w = point.flatten(1), w.flatten(1)
    lo_d = (lo - point).flatten(1) if isinstance(lo, torch.Tensor) else lo - p
    hi_d = (hi - point).flatten(1) if isinstance(hi, torch.Tensor) else hi - p
    w = torch.where((b < 0)[:, None], -w, w)  # <w, d> = b < 0 is <-w, d> = -b: the same d
    b = b.abs()
    # along sign(w_i) each coordinate can move by r_i before hitting the box
    r = torch.where(w > 0, hi_d, -lo_d).clamp_min(0)
    if norm is Norm.LINF:
        t = _min_threshold(w.abs(), r, b)
        d = w.sign() * torch.minimum(t[:, None], r)
    else:
        lam_i = torch.where(w.abs() > 0, r / w.abs().clamp_min(1e-12), torch.zeros_like(r))
        lam = _min_threshold(w * w, lam_i, b)
        d = w * torch.minimum(lam[:, None], lam_i)
    return d.view(n, *point.shape[1:])


def _size(d: torch.Tensor, norm: Norm) -> torch.Tensor:
    flat = d.flatten(1)
    return flat.abs().amax(1) if norm is Norm.LINF else flat.norm(dim=1)


def towards(t: torch.Tensor):
    """The boundary to target class t: (f_t - f_y, its input gradient) at x (one forward+backward)."""
    def boundary(model, x, y, norm):
        x = x.detach().requires_grad_(True)
        z = model(x)
        diff = z.gather(1, t[:, None]).squeeze(1) - z.gather(1, y[:, None]).squeeze(1)
        (w,) = torch.autograd.grad(diff.sum(), x)
        return diff.detach(), w, 1
    return boundary


def nearest_boundary(model, x, y, norm):
    """The untargeted FAB step's boundary: the class j != y whose linearised boundary is closest,
    |f_j - f_y| / ||grad(f_j - f_y)||_dual (one forward, K backward)."""
    x = x.detach().requires_grad_(True)
    z = model(x)
    k = z.shape[1]
    zy = z.gather(1, y[:, None]).squeeze(1)
    diffs, grads = [], []
    for j in range(k):
        d = z[:, j] - zy
        (g,) = torch.autograd.grad(d.sum(), x, retain_graph=j < k - 1)
        diffs.append(d.detach())
        grads.append(g)
    diff, w = torch.stack(diffs, 1), torch.stack(grads, 1)                 # (N, K), (N, K, ...)
    dual = w.flatten(2).abs().sum(2) if norm is Norm.LINF else w.flatten(2).norm(dim=2)
    dist = diff.abs() / dual.clamp_min(1e-12)
    dist = dist.scatter(1, y[:, None], float("inf"))
    j = dist.argmin(1)
    pick = j.view(-1, *([1] * (w.dim() - 1))).expand(-1, 1, *w.shape[2:])
    return diff.gather(1, j[:, None]).squeeze(1), w.gather(1, pick).squeeze(1), k


def _fab_run(model, x0, y, boundary, ball: Ball, steps: int, start):
    """One FAB run from ``start``: (best perturbation size, best point, fwd+bwd, fwd)."""
    shape1 = (-1, *([1] * (x0.dim() - 1)))
    norm, clip = ball.norm, ball.clip
    lo, hi = clip
    x = start.clone()
    best = x0.clone()
    best_size = torch.full((x0.shape[0],), float("inf"), device=x0.device)
    grads = 0
    for _ in range(steps):
        diff, w, backward = boundary(model, x, y, norm)
        grads += backward * x0.shape[0]
        x = x.detach()
        b_k = -diff
        b_0 = -diff - (w.flatten(1) * (x0 - x).flatten(1)).sum(1)
        d_k = project(x, w, b_k, lo, hi, norm)
        d_0 = project(x0, w, b_0, lo, hi, norm)
        s_k, s_0 = _size(d_k, norm), _size(d_0, norm)
        alpha = (s_k / (s_k + s_0).clamp_min(1e-12)).clamp(0, ALPHA_MAX).view(shape1)
        x = clip_to((1 - alpha) * (x + ETA * d_k) + alpha * (x0 + ETA * d_0), clip)
        with torch.no_grad():
            fooled = model(x).argmax(1).ne(y)
        size = _size(x - x0, norm)
        better = fooled & (size < best_size)
        best = torch.where(better.view(shape1), x, best)
        best_size = torch.where(better, size, best_size)
        x = torch.where(fooled.view(shape1), (1 - BETA) * x0 + BETA * x, x)
    return best_size, best, grads, steps * x0.shape[0]


def _fab(model, x, y, boundaries, ball: Ball, params: FABParams, generator) -> AttackOutput:
    """FAB at budget ``eps`` over the ``boundaries`` (one per target, or the nearest one): per example the first
    misclassified point within eps; later runs attack only the examples still robust."""
    x0 = x.detach()
    out = x0.clone()
    pending = torch.arange(x0.shape[0], device=x0.device)
    grads, fwds, eps = 0, x0.shape[0], ball.eps
    for boundary in boundaries:
        for r in range(max(params.restarts, 1)):
            xs, ys = x0[pending], y[pending]
            start = xs if r == 0 else clip_to(xs + _random_start(xs, eps, ball.norm, generator), ball.clip)
            size, best, g, f = _fab_run(model, xs, ys, boundary(pending), ball, params.steps, start)
            grads, fwds = grads + g, fwds + f
            broken = size <= eps * (1 + 1e-6)
            out[pending[broken]] = best[broken]
            pending = pending[~broken]
            if pending.numel() == 0:
                return AttackOutput(x_adv=out, example_passes=grads, forward_passes=fwds)
    return AttackOutput(x_adv=out, example_passes=grads, forward_passes=fwds)


def _fab_t_rows(model, x0, y, ball: Ball, steps: int, runs: Runs):
    """FAB-T runs, one per row towards its own target (``runs``): (best perturbation size, best point, fwd+bwd,
    fwd). A row stops once its perturbation is within eps (the verdict at eps: broken; a smaller one is not
    needed) or once a run of lower rank broke its point. Success checks query the fast twin (attacks/inference.py);
    a row counts as broken within eps only once the model itself confirms it."""
    shape1, (lo, hi), eps = (-1, *([1] * (x0.dim() - 1))), ball.clip, ball.eps * (1 + 1e-6)
    n, norm = x0.shape[0], ball.norm
    start = x0 + _random_start(x0, ball.eps, norm, None, runs.raw) * (runs.restart > 0).to(x0.dtype).view(shape1)
    x, best = clip_to(start, ball.clip), x0.clone()
    best_size = torch.full((n,), float("inf"), device=x0.device)
    fast, grads, fwds = scorer(model, x0), 0, 0
    active, every = torch.arange(n, device=x0.device), compact_every(x0.device)
    for i in range(steps):
        if i % every == 0:
            done = best_size <= eps
            active = active[~(done | runs.superseded(done))[active]]
            if active.numel() == 0:
                break
        xa, xo, ya = x[active], x0[active], y[active]
        diff, w, _ = towards(runs.target[active])(model, xa, ya, norm)
        flat = w.flatten(1)
        d = project(torch.cat((xa, xo)), torch.cat((w, w)), torch.cat((-diff, -diff - (flat * (xo - xa).flatten(1))
                                                                         .sum(1))), lo, hi, norm)
        d_k, d_0 = d[:active.numel()], d[active.numel():]
        s_k, s_0 = _size(d_k, norm), _size(d_0, norm)
        alpha = (s_k / (s_k + s_0).clamp_min(1e-12)).clamp(0, ALPHA_MAX).view(shape1)
        new = clip_to((1 - alpha) * (xa + ETA * d_k) + alpha * (xo + ETA * d_0), ball.clip)
        with torch.no_grad():
            fooled = fast(new).argmax(1).ne(ya)
        size = _size(new - xo, norm)
        better = fooled & (size < best_size[active])
        fwds, grads = fwds + active.numel(), grads + active.numel()
        if fast is not model:  # a break within eps counts only where the model itself misclassifies the point
            within = better & (size <= eps)
            better, fwds = better & (~within | confirm(model, new, ya, within)), fwds + int(within.sum())
        best[active] = torch.where(better.view(shape1), new, best[active])
        best_size[active] = torch.where(better, size, best_size[active])
        x[active] = torch.where(fooled.view(shape1), (1 - BETA) * xo + BETA * new, new)
    return best_size, best, grads, fwds


def fab_targeted(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball,
                 params: FABTParams = FABTParams(), *, generator: torch.Generator | None = None) -> AttackOutput:
    """FAB-T: towards each of the ``n_targets`` classes ranked highest after y, x ``restarts`` runs each, with the
    result of running them in turn (batched, attacks/targeted.py): x_adv is the first point found within eps."""
    fwds = [0]  # the ranking forward is counted once, with the passes (attacks/targeted.py)

    def run(xs, ys, runs: Runs):
        size, best, g, f = _fab_t_rows(model, xs, ys, ball, params.steps, runs)
        fwds[0] += f
        broken = size <= ball.eps * (1 + 1e-6)
        return torch.where(broken.view(-1, *([1] * (xs.dim() - 1))), best, xs), broken, g

    with frozen_eval(model):
        out = ranked_runs(run, model, x, y, (params.n_targets, params.restarts, ball.norm, params.max_rows), generator)
    return AttackOutput(x_adv=out.x_adv, example_passes=out.example_passes, forward_passes=fwds[0])


def fab_untargeted(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ball: Ball,
                   params: FABParams = FABParams(), *, generator: torch.Generator | None = None) -> AttackOutput:
    """Untargeted FAB: each step towards the nearest linearised boundary (K backward passes per step)."""
    with frozen_eval(model):
        return _fab(model, x, y, [lambda rows: nearest_boundary], ball, params, generator)


fab = register(AttackSpec("fab", "FAB", fab_untargeted, FABParams))
fab_t = register(AttackSpec("fab_t", "FAB-T", fab_targeted, FABTParams))


def _random_start(x, eps, norm, generator, raw=None):
    """FAB's random restart: a random direction of size about eps / 2 (Linf: a box point; L2: a sphere point);
    ``raw``: the draw itself (uniform for Linf, normal for L2) when the caller made it (attacks/targeted.py)."""
    if norm is Norm.LINF:
        return (2 * (draw("rand", x.shape, generator, x) if raw is None else raw) - 1) * eps * 0.5
    g = draw("randn", x.shape, generator, x) if raw is None else raw
    return g * (eps * 0.5 / g.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, *([1] * (x.dim() - 1)))

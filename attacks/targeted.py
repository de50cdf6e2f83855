"""Multi-target attacks: run a targeted attack towards each of the ``n_targets`` classes the model ranks highest
after the true one (on the clean input), as AutoAttack's APGD-T and FAB-T do. An example stays robust only if every
targeted run leaves it correctly classified; later targets attack only the examples still robust.

Two drivers with the same per-example result:
- ``multi_target`` runs one target after another (PGD-T uses it).
- ``ranked_runs`` (APGD-T, FAB-T) attacks the (point, target, restart) runs of a call together, in batches of up to
  ``rows_per_batch`` rows: a robust point costs one large batch per step instead of ``n_targets`` x ``restarts``
  small ones (the first batch holds rank 0 alone: on an undefended model it breaks nearly every point, and later
  ranks then run only on the few left). Each run has a rank, k = target index x restarts + restart, the order in
  which they would run one after another; a run stops once it breaks its point or once a run of lower rank broke
  the same point (it would never have started), and a point's result is the run of lowest rank that broke it, or,
  when none did, the last run's kept point: the sequential order's result. Each run's random start is drawn from
  its own stream (seeded by the call's generator and the rank), so it does not depend on which runs share a batch
  (tests/attacks/test_targeted.py compares batchings with the one-run-at-a-time order: the same verdict per point,
  the same points up to float noise).
Built on this: PGD-T (attacks/pgd.py), APGD-T (attacks/apgd.py), FAB-T (attacks/fab.py).
Shapes: x (N, ...), y (N,) int64 true labels; targets (N, n_targets) int64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import AttackOutput, Norm, draw, frozen_eval
from attacks.inference import scorer

# A batch of runs holds at most this many input values (a proxy for its activations' memory): 160 rows of 28x28 on
# a CPU (one thread runs the Madry CNN 17% slower per row at 256 rows than at 160: caches), 2,048 rows of 3x32x32 on
# an accelerator
CPU_FLOATS, ACCELERATOR_FLOATS = 160 * 784, 2048 * 3072


def target_classes(model, x: torch.Tensor, y: torch.Tensor, n_targets: int) -> torch.Tensor:
    """(N, n) int64: the n highest-ranked classes other than y, best first."""
    with frozen_eval(model), torch.no_grad():
        logits = scorer(model, x)(x)
    logits = logits.scatter(1, y[:, None], float("-inf"))
    n = min(n_targets, logits.shape[1] - 1)
    return logits.topk(n, dim=1).indices


def multi_target(run, model, x: torch.Tensor, y: torch.Tensor, n_targets: int) -> AttackOutput:
    """``run(xs, ys, target) -> AttackOutput`` towards each ranked target in turn, on the examples still robust."""
    targets = target_classes(model, x, y, n_targets)
    best = x.detach().clone()
    pending = torch.arange(x.shape[0], device=x.device)
    passes = x.shape[0]  # the ranking forward, counted as one pass
    for j in range(targets.shape[1]):
        out = run(x[pending], y[pending], targets[pending, j])
        passes += out.example_passes
        best[pending] = out.x_adv
        with frozen_eval(model), torch.no_grad():
            fooled = model(out.x_adv).argmax(1).ne(y[pending])
        pending = pending[~fooled]
        if pending.numel() == 0:
            break
    return AttackOutput(x_adv=best, example_passes=passes)


@dataclass(frozen=True)
class Runs:
    """The rows of one batch of ``ranked_runs``: each row's point (its index in the call), rank k, restart
    (k mod restarts), target class and the random draw of its start (uniform in [0, 1) for Linf, normal for L2)."""

    point: torch.Tensor
    rank: torch.Tensor
    restart: torch.Tensor
    target: torch.Tensor
    raw: torch.Tensor
    points: int

    def superseded(self, done: torch.Tensor) -> torch.Tensor:
        """Rows a run of lower rank on the same point has already broken (``done``: the rows broken so far)."""
        first = torch.full((self.points,), torch.iinfo(torch.int64).max, device=self.rank.device)
        first = first.scatter_reduce(0, self.point[done], self.rank[done], "amin")
        return self.rank > first[self.point]


def rows_per_batch(n: int, like: torch.Tensor, max_rows: int = 0) -> int:
    """Rows of one batch of runs: the caller's batch, grown towards what suits the device for inputs like
    ``like`` (a budget of input values), never beyond ``max_rows`` when given (the audit passes its batch size,
    which pre-flight proved fits)."""
    budget = (CPU_FLOATS if like.device.type == "cpu" else ACCELERATOR_FLOATS) // max(like[0].numel(), 1)
    return max(n, min(budget, max_rows) if max_rows > 0 else budget)


def _start_draw(x: torch.Tensor, norm: Norm, seed: int, ranks: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Each row's start draw from its rank's own stream (the same rows whatever batch they share)."""
    out = torch.empty((points.numel(), *x.shape[1:]), device=x.device, dtype=x.dtype)
    for k in ranks.unique().tolist():
        gen = torch.Generator(device=x.device).manual_seed(seed + 7919 * int(k))
        sel = ranks == k
        out[sel] = draw("rand" if norm is Norm.LINF else "randn", x.shape, gen, x)[points[sel]]
    return out


def confirm(model, kept: torch.Tensor, y: torch.Tensor, broken: torch.Tensor) -> torch.Tensor:
    """``broken`` where the model itself misclassifies the kept point (one forward of the broken rows)."""
    rows = broken.nonzero().flatten()
    if rows.numel() == 0:
        return broken
    with frozen_eval(model), torch.no_grad():
        wrong = model(kept[rows]).argmax(1).ne(y[rows])
    return broken.index_put((rows[~wrong],), torch.zeros((), dtype=torch.bool, device=broken.device))


def ranked_runs(run, model, x: torch.Tensor, y: torch.Tensor, spec: tuple[int, int, Norm, int],
                generator: torch.Generator | None) -> AttackOutput:
    """``run(xs, ys, runs: Runs) -> (x kept, broken mask, passes)`` on every (point, target, restart) run, batched,
    with the sequential order's result. ``spec``: (n_targets, restarts, norm, max_rows: the largest batch, 0 for
    the device's choice). A run's break counts only where the model misclassifies the point it kept."""
    n_targets, restarts, norm, max_rows = spec
    targets = target_classes(model, x, y, n_targets)
    n, k_all = x.shape[0], targets.shape[1] * max(restarts, 1)
    dev = x.device
    seed = int(torch.randint(0, 2**31, (1,), generator=generator,
                             device=generator.device if generator is not None else dev))
    rank = torch.arange(k_all, device=dev).repeat_interleave(n)   # rank-major: all points of rank 0 first
    point = torch.arange(n, device=dev).repeat(k_all)
    best_rank = torch.full((n,), k_all, device=dev)
    out, passes, cap, take = x.detach().clone(), n, rows_per_batch(n, x, max_rows), n  # rank 0 first, alone: on an
    while rank.numel():                                               # easy model it breaks nearly every point
        left = rank < best_rank[point]                           # runs no lower-ranked run made pointless
        rank, point = rank[left], point[left]
        r, p, rank, point = rank[:take], point[:take], rank[take:], point[take:]
        take = cap
        if r.numel() == 0:
            break
        rows = Runs(p, r, r % max(restarts, 1), targets[p, r // max(restarts, 1)],
                    _start_draw(x, norm, seed, r, p), n)
        kept, broken, spent = run(x[p], y[p], rows)
        passes += spent
        broken = confirm(model, kept, y[p], broken)
        first = torch.full((n,), k_all, device=dev).scatter_reduce(0, p[broken], r[broken], "amin")
        win = broken & (r == first[p]) & (r < best_rank[p])
        out[p[win]] = kept[win]
        best_rank = torch.minimum(best_rank, first)
        last = (r == k_all - 1) & (best_rank[p] == k_all)         # never broken: the last run's kept point
        out[p[last]] = kept[last]
    return AttackOutput(x_adv=out, example_passes=passes)

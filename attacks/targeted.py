"""Multi-target attacks: run a targeted attack towards each of the ``n_targets`` classes the model ranks highest
after the true one (on the clean input), as AutoAttack's APGD-T does. An example stays robust only if every
targeted run leaves it correctly classified; later targets attack only the examples still robust.

Built on this: PGD-T (attacks/pgd.py: PGD descending the cross-entropy to the target) and APGD-T (attacks/apgd.py:
APGD with the targeted DLR loss). FAB-T (attacks/fab.py) ranks its targets with ``target_classes`` too.
Shapes: x (N, ...), y (N,) int64 true labels; targets (N, n_targets) int64.
"""
from __future__ import annotations

import torch

from attacks.base import AttackOutput, frozen_eval


def target_classes(model, x: torch.Tensor, y: torch.Tensor, n_targets: int) -> torch.Tensor:
    """(N, n) int64: the n highest-ranked classes other than y, best first."""
    with frozen_eval(model), torch.no_grad():
        logits = model(x)
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

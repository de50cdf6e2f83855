"""Multi-target attacks: run a targeted attack towards each of the ``n_targets`` classes the model ranks highest
after the true one (on the clean input), as AutoAttack's APGD-T does. An example stays robust only if every
targeted run leaves it correctly classified; later targets attack only the examples still robust.

``pgd_t``: PGD descending the cross-entropy to the target. ``apgd_t``: APGD with the targeted DLR loss (needs
>= 4 classes; with fewer, the targeted cross-entropy is used).
"""
from __future__ import annotations

import torch

from attacks.apgd import apgd
from attacks.base import AttackOutput, frozen_eval
from attacks.pgd import pgd


def target_classes(model, x: torch.Tensor, y: torch.Tensor, n_targets: int) -> torch.Tensor:
    """(N, n) int64: the n highest-ranked classes other than y, best first."""
    with frozen_eval(model), torch.no_grad():
        logits = model(x)
    logits = logits.scatter(1, y[:, None], float("-inf"))
    n = min(n_targets, logits.shape[1] - 1)
    return logits.topk(n, dim=1).indices


def _multi_target(run, model, x, y, n_targets, **kw) -> AttackOutput:
    targets = target_classes(model, x, y, n_targets)
    best = x.detach().clone()
    pending = torch.arange(x.shape[0], device=x.device)
    passes = x.shape[0]  # the ranking forward, counted as one pass
    for j in range(targets.shape[1]):
        out = run(model, x[pending], y[pending], target=targets[pending, j], **kw)
        passes += out.example_passes
        best[pending] = out.x_adv
        with frozen_eval(model), torch.no_grad():
            fooled = model(out.x_adv).argmax(1).ne(y[pending])
        pending = pending[~fooled]
        if pending.numel() == 0:
            break
    return AttackOutput(x_adv=best, example_passes=passes)


def pgd_t(model, x, y, *, n_targets: int = 3, **kw) -> AttackOutput:
    return _multi_target(pgd, model, x, y, n_targets, **kw)


def apgd_t(model, x, y, *, n_targets: int = 9, **kw) -> AttackOutput:
    with frozen_eval(model), torch.no_grad():
        classes = model(x[:1]).shape[1]
    return _multi_target(apgd, model, x, y, n_targets, loss="dlr" if classes >= 4 else "ce", **kw)

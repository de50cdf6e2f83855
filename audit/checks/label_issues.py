"""Label issues in the training split, found by cleanlab on out-of-fold predicted probabilities.

cleanlab's ``find_label_issues`` needs out-of-sample probabilities: with in-sample probabilities of a model that
fits its training data it flags nothing and gives no warning (REFERENCE section 6). So the probabilities come from
K-fold training of the audited architecture: each training point is scored by a model that never saw it.
Evidence for training-data sanitisation against label-flipping (availability) poisoning, NIST AI 100-2 §2.3.1.
It does not see clean-label or backdoor poisoning, where labels are correct.
"""
from __future__ import annotations

import numpy as np
import torch

from attacks.training import train
from audit.checks.base import controls
from audit.context import Context
from audit.result import Measurement
from audit.rows import take

MAX_LISTED = 25


def out_of_fold_probabilities(ctx: Context, folds: int, epochs: int) -> np.ndarray:
    """Softmax probabilities for every training point from a model trained on the other folds."""
    y = ctx.data.y_train.numpy()
    rng = np.random.default_rng(ctx.config.seed)
    fold_of = np.empty(len(y), dtype=int)
    for c in np.unique(y):  # stratified folds
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    probs = np.zeros((len(y), ctx.data.num_classes), dtype=np.float64)
    t = ctx.config.training
    for k in range(folds):
        fit, held = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        ctx.seed_everything(offset=k + 1)
        model = ctx.build_model()
        train(model, take(ctx.data.x_train, fit), ctx.data.y_train[fit], epochs=epochs, batch_size=t.batch_size,
              lr=t.lr, seed=ctx.config.seed + k, desc=f"fold {k + 1}/{folds}")
        probs[held] = torch.softmax(ctx.logits(model, take(ctx.data.x_train, held)), 1).double().numpy()
    return probs


class LabelIssues:
    id = "label_issues"
    title = "Label issues in the training data (cleanlab)"
    scope = "data"
    controls = controls(MAP_2_3="direct", MEASURE_2_5="supporting", MEASURE_2_1="supporting",
                        MAP_4_1="supporting")
    description = ("cleanlab find_label_issues on K-fold out-of-fold probabilities of the audited architecture; "
                   "ranked by label quality (self-confidence).")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
        cfg = ctx.config.label_issues
        if not ctx.can_train:
            return Measurement(check=self.id, skipped="K-fold out-of-fold probabilities need model.factory to "
                                                      "train the architecture; an archive cannot be retrained")
        probs = out_of_fold_probabilities(ctx, cfg.folds, cfg.epochs)
        labels = ctx.data.y_train.numpy()
        ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
        quality = get_label_quality_scores(labels, probs)
        names = ctx.data.class_names
        per_class = {names[c]: int((labels[ranked] == c).sum()) for c in range(ctx.data.num_classes)}
        listed = [{"index": int(i), "given_label": names[labels[i]], "predicted_label": names[int(probs[i].argmax())],
                   "label_quality": float(quality[i])} for i in ranked[:MAX_LISTED]]
        oof_acc = float((probs.argmax(1) == labels).mean())
        rate = len(ranked) / len(labels)
        return Measurement(
            check=self.id, variant=None,
            metrics={"label_issue_rate": rate, "label_issues": float(len(ranked)), "out_of_fold_accuracy": oof_acc},
            details={"indices_ranked": [int(i) for i in ranked], "top_issues": listed, "per_class_issues": per_class,
                     "folds": cfg.folds, "epochs": cfg.epochs, "split": "train",
                     "method": "cleanlab.filter.find_label_issues, out-of-fold (K-fold) probabilities"},
            summary=f"{len(ranked)} of {len(labels)} training labels flagged ({rate:.1%}); "
                    f"out-of-fold accuracy {oof_acc:.1%} over {cfg.folds} folds")

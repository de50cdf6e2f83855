"""Train/test leakage: test rows that are exact or near copies of training rows, in input space and in the
audited model's embedding space, with duplicates whose labels conflict; and a self-test that injects known leaked
copies (exact and jittered) into a copy of the test split and measures the detector's recall on this data.

A leaked test row inflates every accuracy measured on it (NIST AI 100-2 §2.3 data integrity; EU AI Act Art. 10).
The near-duplicate threshold is absolute and calibrated on within-train nearest-neighbour distances
(audit/detectors/leakage.py), not Datalab's relative one.
"""
from __future__ import annotations

import numpy as np
import torch

from audit.checks.base import controls
from audit.context import Context
from audit.detectors.leakage import calibrated_threshold, find_leaks, jittered_copies
from audit.embeddings import test_embedding, train_embedding
from audit.result import Measurement

MAX_LISTED = 25


def _space(train, y_train, test, y_test, quantile, seed):
    thr = calibrated_threshold(train, quantile=quantile, seed=seed)
    leaks = find_leaks(train, y_train, test, y_test, threshold=thr)
    return thr, leaks


def self_test(train, y_train, *, threshold, copies, sigmas, scale, clip, seed):
    """Recall of the detector on ``copies`` training rows injected into the test split at each jitter sigma, and
    the flag rate on the untouched test rows (an upper bound on its false-positive rate)."""
    rows = []
    for k, sigma in enumerate(sigmas):
        x_inj, src = jittered_copies(train, copies, sigma * scale, clip, seed + k)
        leaks = find_leaks(train, y_train, x_inj, y_train[src], threshold=threshold)
        rows.append({"sigma": sigma, "copies": copies, "recall": float(leaks.flagged.mean())})
    return rows


def input_space_leaks(ctx: Context):
    """(threshold, Leaks) of the test split against the training split in input space (cached per run)."""
    def compute():
        d = ctx.data
        return _space(d.x_train.flatten(1).float(), d.y_train.numpy(), d.x_test.flatten(1).float(),
                      d.y_test.numpy(), ctx.config.leakage.quantile, ctx.config.seed)
    return ctx.cached(("leakage", "input"), compute)


class Leakage:
    id = "leakage"
    title = "Train/test leakage (exact and near duplicates)"
    scope = "data"
    controls = controls(MEASURE_2_1="direct", MAP_2_3="supporting", MEASURE_2_5="supporting")
    description = ("Exact duplicates by hash and near duplicates closer than the 0.1% quantile of within-train "
                   "nearest-neighbour distances, in input and embedding space; conflicting labels; a self-test "
                   "with injected exact and jittered copies.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        cfg = ctx.config.leakage
        d = ctx.data
        if d.lazy:
            return Measurement(check=self.id, skipped="the data is read lazily; the leakage check compares whole "
                                                      "splits in memory (planned: blockwise over lazy rows)")
        xtr = d.x_train.flatten(1).float()
        ytr, yte = d.y_train.numpy(), d.y_test.numpy()
        seed = ctx.config.seed
        thr, leaks = input_space_leaks(ctx)
        width = d.range_width
        lo, hi = d.attack_clip
        clip = (lo.flatten(), hi.flatten()) if isinstance(lo, torch.Tensor) else (lo, hi)
        sigmas = tuple(cfg.selftest_sigmas)
        copies = min(cfg.selftest_copies, len(xtr))
        selftest = self_test(xtr, ytr, threshold=thr, copies=copies, sigmas=sigmas, scale=width,
                             clip=clip, seed=seed) if copies else []
        details = {"threshold": thr, "quantile": cfg.quantile, "exact": int(leaks.exact.sum()),
                   "near": int(leaks.near.sum()), "conflicting_labels": int(leaks.conflicting.sum()),
                   "n_test": len(yte), "selftest": selftest, "sigma_units": f"x input range width {width:g}"}
        details["pairs"] = [{"test_row": int(i), "train_row": int(leaks.neighbour[i]),
                             "distance": float(leaks.distance[i]), "exact": bool(leaks.exact[i]),
                             "test_label": int(yte[i]), "train_label": int(ytr[leaks.neighbour[i]])}
                            for i in np.argsort(leaks.distance)[:MAX_LISTED] if leaks.flagged[i]]
        base = ctx.variants.get("baseline")
        emb_flagged = np.zeros(len(yte), dtype=bool)
        if base is not None:
            e_tr = train_embedding(ctx)  # shared with the Datalab and proxy label checks
            if e_tr is not None:
                e_tr = torch.from_numpy(e_tr)
                e_te = torch.from_numpy(test_embedding(ctx))  # shared with the test-outlier check
                e_thr, e_leaks = _space(e_tr, ytr, e_te, yte, cfg.quantile, seed)
                emb_flagged = e_leaks.flagged
                details["embedding"] = {"threshold": e_thr, "near": int(e_leaks.near.sum()),
                                        "dimensions": int(e_tr.shape[1]), "model": "baseline (penultimate layer)"}
        flagged = leaks.flagged
        details["flagged"] = [{"test_row": int(i), "train_row": int(leaks.neighbour[i]),
                               "distance": round(float(leaks.distance[i]), 6), "exact": bool(leaks.exact[i]),
                               "conflicting_label": bool(leaks.conflicting[i])} for i in np.flatnonzero(flagged)]
        details["flagged_in_embedding_only"] = int((emb_flagged & ~flagged).sum())
        rate = float(flagged.mean())
        recall_005 = [r["recall"] for r in selftest if r["sigma"] <= 0.05 + 1e-12]
        metrics = {"leaked_test_rate": rate, "exact_duplicates": float(leaks.exact.sum()),
                   "near_duplicates": float(leaks.near.sum()), "conflicting_labels": float(leaks.conflicting.sum()),
                   "embedding_near_duplicates": float(emb_flagged.sum())}
        if recall_005:
            metrics["selftest_min_recall"] = min(recall_005)
        test_text = "; self-test recall " + ", ".join(f"{r['recall']:.0%} at sigma {r['sigma']:g}"
                                                     for r in selftest) if selftest else ""
        return Measurement(
            check=self.id, metrics=metrics, details=details,
            summary=(f"{int(flagged.sum())} of {len(yte)} test rows duplicate a training row ({rate:.1%}: "
                     f"{int(leaks.exact.sum())} exact, {int(leaks.conflicting.sum())} with a conflicting label; "
                     f"threshold {thr:.3g}){test_text}"))

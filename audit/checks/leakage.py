"""Train/test leakage: test rows that are exact or near copies of training rows, in input space and in the
audited model's embedding space, with duplicates whose labels conflict; and a self-test that injects known leaked
copies (exact and jittered) into a copy of the test split and measures the detector's recall on this data.

A leaked test row inflates every accuracy measured on it (NIST AI 100-2 §2.3 data integrity; EU AI Act Art. 10).
The near-duplicate threshold is absolute and calibrated on within-train nearest-neighbour distances
(audit/methods/leakage.py), not Datalab's relative one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.checks.base import AuditContext, RunCheck, controls, register, settings
from audit.checks.run_view import RunView, Shared, TestEmbeddings, TrainEmbeddings
from audit.config.data_checks import LeakageConfig
from audit.core.result import Details, Measurement
from audit.methods.leakage import Leaks, calibrated_threshold, find_leaks, jittered_copies
from audit.methods.seeding import LEAK_SELFTEST

MAX_LISTED = 25
SELFTEST_MAX_SIGMA = 0.05   # the self-test's headline recall is over the jitters up to this sigma


@dataclass(frozen=True)
class LeakSelfTest:
    sigma: float
    copies: int
    recall: float


@dataclass(frozen=True)
class LeakPair:
    test_row: int
    train_row: int
    distance: float
    exact: bool
    test_label: int
    train_label: int


@dataclass(frozen=True)
class FlaggedLeak:
    test_row: int
    train_row: int
    distance: float
    exact: bool
    conflicting_label: bool


@dataclass(frozen=True)
class EmbeddingLeaks:
    threshold: float
    near: int
    dimensions: int
    model: str


@dataclass(frozen=True)
class LeakageDetails(Details):
    threshold: float
    quantile: float
    exact: int
    near: int
    conflicting_labels: int
    n_test: int
    selftest: tuple[LeakSelfTest, ...]
    sigma_units: str
    pairs: tuple[LeakPair, ...]           # the closest flagged pairs
    flagged: tuple[FlaggedLeak, ...]      # every flagged test row
    flagged_in_embedding_only: int
    embedding: EmbeddingLeaks | None = None


def self_test(train, y_train, *, threshold, copies, sigmas, scale, clip, seed) -> tuple[LeakSelfTest, ...]:
    """Recall of the detector on ``copies`` training rows injected into the test split at each jitter sigma."""
    rows = []
    for k, sigma in enumerate(sigmas):
        x_inj, src = jittered_copies(train, copies, sigma * scale, clip, LEAK_SELFTEST.seed(seed, k))
        leaks = find_leaks(train, y_train, x_inj, y_train[src], threshold=threshold)
        rows.append(LeakSelfTest(sigma=sigma, copies=copies, recall=float(leaks.flagged.mean())))
    return tuple(rows)


class InputLeaks(Shared[tuple[float, Leaks]]):
    """(threshold, Leaks) of the test split against the training split in input space (shared: data_impact)."""

    stage = "input-space neighbours"

    @classmethod
    def compute(cls, run: RunView, variant: str | None) -> tuple[float, Leaks]:
        d = run.data
        xtr, xte = d.x_train.flatten(1).float(), d.x_test.flatten(1).float()
        thr = calibrated_threshold(xtr, quantile=settings(Leakage, run.config).quantile, seed=run.config.seed)
        return thr, find_leaks(xtr, d.y_train.numpy(), xte, d.y_test.numpy(), threshold=thr)


@register
class Leakage(RunCheck):
    id = "leakage"
    rank = 120
    title = "Train/test leakage (exact and near duplicates)"
    controls = controls(MEASURE_2_1="direct", MAP_2_3="supporting", MEASURE_2_5="supporting")
    description = ("Exact duplicates by hash and near duplicates closer than the 0.1% quantile of within-train "
                   "nearest-neighbour distances, in input and embedding space; conflicting labels; a self-test "
                   "with injected exact and jittered copies.")
    Details = LeakageDetails
    Config = LeakageConfig   # its [checks.leakage] table (in the config room: audit/methods uses it too)
    triage_columns = ("leaked_to_test_rows", "leak_distance", "leak_exact", "leak_conflicting_label")

    def triage(self, details: LeakageDetails, row) -> None:
        """Each flagged test row, and the training rows it duplicates (their closest distance)."""
        for p in details.flagged:
            row("test", p.test_row).update(leak_distance=p.distance, leak_exact=p.exact,
                                           leak_conflicting_label=p.conflicting_label)
            tr = row("train", p.train_row)
            tr["leaked_to_test_rows"] = " ".join(filter(None, [str(tr.get("leaked_to_test_rows", "")),
                                                                str(p.test_row)])).strip()
            prev = tr.get("leak_distance")
            tr["leak_distance"] = p.distance if prev is None else min(prev, p.distance)
            tr["leak_exact"] = bool(tr.get("leak_exact")) or p.exact

    def not_applicable(self, ctx: AuditContext) -> str:
        if ctx.data.lazy:
            return ("the data is read lazily; the leakage check compares whole splits in memory (planned: "
                    "blockwise over lazy rows)")
        return ""

    def measure(self, ctx: AuditContext) -> Measurement:
        cfg = settings(self, ctx.config)
        d = ctx.data
        xtr = d.x_train.flatten(1).float()
        ytr, yte = d.y_train.numpy(), d.y_test.numpy()
        seed = ctx.config.seed
        thr, leaks = ctx.get(InputLeaks)
        width = d.range_width
        lo, hi = d.attack_clip
        clip = (lo.flatten(), hi.flatten()) if isinstance(lo, torch.Tensor) else (lo, hi)
        copies = min(cfg.selftest_copies, len(xtr))
        selftest = self_test(xtr, ytr, threshold=thr, copies=copies, sigmas=tuple(cfg.selftest_sigmas), scale=width,
                             clip=clip, seed=seed) if copies else ()
        emb_flagged, embedding = np.zeros(len(yte), dtype=bool), None
        if "baseline" in ctx.variants and ctx.get(TrainEmbeddings) is not None:
            e_tr, e_te = torch.from_numpy(ctx.get(TrainEmbeddings)), torch.from_numpy(ctx.get(TestEmbeddings))
            e_thr = calibrated_threshold(e_tr, quantile=cfg.quantile, seed=seed)
            e_leaks = find_leaks(e_tr, ytr, e_te, yte, threshold=e_thr)
            emb_flagged = e_leaks.flagged
            embedding = EmbeddingLeaks(threshold=e_thr, near=int(e_leaks.near.sum()), dimensions=int(e_tr.shape[1]),
                                       model="baseline (penultimate layer)")
        flagged = leaks.flagged
        details = LeakageDetails(
            threshold=thr, quantile=cfg.quantile, exact=int(leaks.exact.sum()), near=int(leaks.near.sum()),
            conflicting_labels=int(leaks.conflicting.sum()), n_test=len(yte), selftest=selftest,
            sigma_units=f"x input range width {width:g}",
            pairs=tuple(LeakPair(test_row=int(i), train_row=int(leaks.neighbour[i]),
                                 distance=float(leaks.distance[i]), exact=bool(leaks.exact[i]),
                                 test_label=int(yte[i]), train_label=int(ytr[leaks.neighbour[i]]))
                        for i in np.argsort(leaks.distance)[:MAX_LISTED] if flagged[i]),
            flagged=tuple(FlaggedLeak(test_row=int(i), train_row=int(leaks.neighbour[i]),
                                      distance=round(float(leaks.distance[i]), 6), exact=bool(leaks.exact[i]),
                                      conflicting_label=bool(leaks.conflicting[i])) for i in np.flatnonzero(flagged)),
            flagged_in_embedding_only=int((emb_flagged & ~flagged).sum()), embedding=embedding)
        rate = float(flagged.mean())
        recall_small = [r.recall for r in selftest if r.sigma <= SELFTEST_MAX_SIGMA + 1e-12]
        metrics = {"leaked_test_rate": rate, "exact_duplicates": float(leaks.exact.sum()),
                   "near_duplicates": float(leaks.near.sum()), "conflicting_labels": float(leaks.conflicting.sum()),
                   "embedding_near_duplicates": float(emb_flagged.sum())}
        if recall_small:
            metrics["selftest_min_recall"] = min(recall_small)
        test_text = "; self-test recall " + ", ".join(f"{r.recall:.0%} at sigma {r.sigma:g}"
                                                     for r in selftest) if selftest else ""
        return Measurement(
            check=self.id, metrics=metrics, details=details,
            summary=(f"{int(flagged.sum())} of {len(yte)} test rows duplicate a training row ({rate:.1%}: "
                     f"{int(leaks.exact.sum())} exact, {int(leaks.conflicting.sum())} with a conflicting label; "
                     f"threshold {thr:.3g}){test_text}"))

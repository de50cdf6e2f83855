"""Out-of-distribution scores for the test points: cleanlab's ``OutOfDistribution`` (average distance to the k
nearest training rows, mapped to a score in (0, 1]) on the baseline's penultimate embeddings, fitted on the
training split. A test row scoring below the ``test_outliers.quantile`` of the training rows' own (leave-one-out)
scores is flagged: accuracy measured on such rows says little about the training distribution, and many of them
suggest the test split was not drawn like the training split (NIST AI 100-2 §2.3 data integrity; MEASURE 2.5)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from audit.checks.base import AuditContext, RunCheck, controls, register, settings
from audit.checks.run_view import NO_EMBEDDINGS, TestEmbeddings, TrainEmbeddings, embedding_unavailable
from audit.config.data_checks import TestOutliersConfig
from audit.core.result import Details, Measurement

MAX_LISTED = 25


@dataclass(frozen=True)
class OutlierRow:
    test_row: int
    label: str
    score: float


@dataclass(frozen=True)
class TestOutliersDetails(Details):
    __test__ = False  # not a pytest class
    threshold: float
    quantile: float
    fit_rows: int
    dimensions: int
    expected_rate_if_same_distribution: float
    worst: tuple[OutlierRow, ...]
    flagged: dict[str, float]          # test row -> score
    method: str


@register
class TestOutliers(RunCheck):
    id = "test_outliers"
    rank = 140
    __test__ = False  # not a pytest class
    title = "Out-of-distribution test points (cleanlab OutOfDistribution on embeddings)"
    controls = controls(MEASURE_2_5="supporting", MAP_2_3="supporting", MEASURE_2_1="supporting")
    description = ("cleanlab OutOfDistribution kNN scores of each test row against the training split in the "
                   "baseline's embedding space; rows below the training rows' 1% quantile are flagged.")
    Details = TestOutliersDetails
    Config = TestOutliersConfig   # its [checks.test_outliers] table (in the config room: audit/methods uses it too)
    triage_columns = ("test_outlier_score",)
    triage_split = "test"

    def triage(self, details: TestOutliersDetails, row) -> None:
        for i, score in details.flagged.items():
            row("test", int(i))["test_outlier_score"] = score

    def not_applicable(self, ctx: AuditContext) -> str:
        return embedding_unavailable(ctx)

    def measure(self, ctx: AuditContext) -> Measurement:
        from cleanlab.outlier import OutOfDistribution
        cfg = settings(self, ctx.config)
        e_tr = ctx.get(TrainEmbeddings)
        if e_tr is None:
            return Measurement(check=self.id, skipped=NO_EMBEDDINGS)
        n = len(e_tr)
        rows = np.arange(n)
        if n > cfg.max_fit_rows:
            rows = np.sort(np.random.default_rng(ctx.config.seed).choice(n, cfg.max_fit_rows, replace=False))
        e_te = ctx.get(TestEmbeddings)
        ood = OutOfDistribution()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_scores = ood.fit_score(features=e_tr[rows], verbose=False)
            test_scores = ood.score(features=e_te)
        threshold = float(np.quantile(train_scores, cfg.quantile))
        flagged = test_scores < threshold
        y = ctx.data.y_test.numpy()
        names = ctx.data.class_names
        order = np.argsort(test_scores)
        rate = float(flagged.mean())
        details = TestOutliersDetails(
            threshold=threshold, quantile=cfg.quantile, fit_rows=int(len(rows)), dimensions=int(e_tr.shape[1]),
            expected_rate_if_same_distribution=cfg.quantile,
            worst=tuple(OutlierRow(test_row=int(i), label=names[y[i]], score=round(float(test_scores[i]), 5))
                        for i in order[:MAX_LISTED] if flagged[i]),
            flagged={str(int(i)): round(float(test_scores[i]), 5) for i in np.flatnonzero(flagged)},
            method="cleanlab.outlier.OutOfDistribution (kNN on features), baseline penultimate layer")
        return Measurement(
            check=self.id, metrics={"test_outlier_rate": rate, "test_outliers": float(flagged.sum())},
            details=details,
            summary=(f"{int(flagged.sum())} of {len(y)} test rows ({rate:.1%}) score below the training rows' "
                     f"{cfg.quantile:.0%} quantile (about {cfg.quantile:.0%} expected if the splits share a "
                     f"distribution)"))

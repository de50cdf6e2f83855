"""Out-of-distribution scores for the test points: cleanlab's ``OutOfDistribution`` (average distance to the k
nearest training rows, mapped to a score in (0, 1]) on the baseline's penultimate embeddings, fitted on the
training split. A test row scoring below the ``QUANTILE`` quantile of the training rows' own (leave-one-out)
scores is flagged: accuracy measured on such rows says little about the training distribution, and many of them
suggest the test split was not drawn like the training split (NIST AI 100-2 §2.3 data integrity; MEASURE 2.5)."""
from __future__ import annotations

import numpy as np

from audit.checks.base import controls
from audit.context import Context
from audit.embeddings import embedding_unavailable, test_embedding, train_embedding
from audit.result import Measurement

QUANTILE = 0.01
MAX_FIT_ROWS = 20_000
MAX_LISTED = 25


class TestOutliers:
    __test__ = False  # not a pytest class
    id = "test_outliers"
    title = "Out-of-distribution test points (cleanlab OutOfDistribution on embeddings)"
    scope = "data"
    controls = controls(MEASURE_2_5="supporting", MAP_2_3="supporting", MEASURE_2_1="supporting")
    description = ("cleanlab OutOfDistribution kNN scores of each test row against the training split in the "
                   "baseline's embedding space; rows below the training rows' 1% quantile are flagged.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        import warnings

        from cleanlab.outlier import OutOfDistribution
        why = embedding_unavailable(ctx)
        if why:
            return Measurement(check=self.id, skipped=why)
        e_tr = train_embedding(ctx)
        n = len(e_tr)
        rows = np.arange(n)
        if n > MAX_FIT_ROWS:
            rows = np.sort(np.random.default_rng(ctx.config.seed).choice(n, MAX_FIT_ROWS, replace=False))
        e_te = test_embedding(ctx)  # shared with the leakage check
        ood = OutOfDistribution()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_scores = ood.fit_score(features=e_tr[rows])
            test_scores = ood.score(features=e_te)
        threshold = float(np.quantile(train_scores, QUANTILE))
        flagged = test_scores < threshold
        y = ctx.data.y_test.numpy()
        names = ctx.data.class_names
        order = np.argsort(test_scores)
        rate = float(flagged.mean())
        details = {"threshold": threshold, "quantile": QUANTILE, "fit_rows": int(len(rows)),
                   "dimensions": int(e_tr.shape[1]), "expected_rate_if_same_distribution": QUANTILE,
                   "worst": [{"test_row": int(i), "label": names[y[i]], "score": round(float(test_scores[i]), 5)}
                             for i in order[:MAX_LISTED] if flagged[i]],
                   "flagged": {int(i): round(float(test_scores[i]), 5) for i in np.flatnonzero(flagged)},
                   "method": "cleanlab.outlier.OutOfDistribution (kNN on features), baseline penultimate layer"}
        return Measurement(
            check=self.id, metrics={"test_outlier_rate": rate, "test_outliers": float(flagged.sum())},
            details=details,
            summary=(f"{int(flagged.sum())} of {len(y)} test rows ({rate:.1%}) score below the training rows' "
                     f"{QUANTILE:.0%} quantile (about {QUANTILE:.0%} expected if the splits share a distribution)"))

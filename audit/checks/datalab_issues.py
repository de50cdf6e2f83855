"""cleanlab Datalab issue types that add signal beyond label issues and leakage, on the training split: outliers,
near duplicates inside train, non-IID ordering, class imbalance and underperforming groups. Datalab runs on the
baseline's penultimate embeddings (and, for underperforming groups, the label check's out-of-sample
probabilities). It has no notion of splits and a relative near-duplicate threshold, so train/test leakage is the
leakage check's job (REFERENCE section 6). Large training sets are subsampled (seeded) to ``MAX_ROWS``: its
neighbour search is slow (123 s on 60,000 x 512 on 2 cores, bench/data_checks.py)."""
from __future__ import annotations

import logging
import warnings

import numpy as np

from audit.checks.base import controls
from audit.context import Context
from audit.embeddings import embedding_unavailable, train_embedding
from audit.result import Measurement

MAX_ROWS = 10_000
ISSUE_TYPES = ("outlier", "near_duplicate", "non_iid", "class_imbalance", "underperforming_group")
MAX_LISTED = 25


class DatalabIssues:
    id = "datalab"
    title = "Data issues found by cleanlab Datalab (training split)"
    scope = "data"
    controls = controls(MAP_2_3="supporting", MEASURE_2_1="supporting", MEASURE_2_11="supporting")
    description = ("Datalab outlier, near_duplicate, non_iid, class_imbalance and underperforming_group issue types "
                   "on the baseline's embeddings of the training split.")

    def measure(self, ctx: Context, variant: str | None) -> Measurement:
        from cleanlab import Datalab
        why = embedding_unavailable(ctx)
        if why:
            return Measurement(check=self.id, skipped=why)
        emb = train_embedding(ctx)
        labels = ctx.data.y_train.numpy()
        n = len(labels)
        rows = np.arange(n)
        if n > MAX_ROWS:
            rows = np.sort(np.random.default_rng(ctx.config.seed).choice(n, MAX_ROWS, replace=False))
        probs = ctx.cached_only(("label_issues", "train_probs"))
        types = {t: {} for t in ISSUE_TYPES if t != "underperforming_group" or probs is not None}
        lab = Datalab(data={"label": labels[rows]}, label_name="label", verbosity=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("cleanlab").setLevel(logging.ERROR)
            lab.find_issues(features=emb[rows], pred_probs=None if probs is None else probs[rows],
                            issue_types=types)
        summary = lab.get_issue_summary()
        table, metrics, flagged = {}, {}, {}
        for _, r in summary.iterrows():
            t = r["issue_type"]
            issues = lab.get_issues(t)
            mask = issues[f"is_{t}_issue"].to_numpy()
            score = issues[f"{t}_score"].to_numpy()
            order = np.argsort(score)[:MAX_LISTED]
            table[t] = {"issues": int(mask.sum()), "score": float(r["score"]),
                        "worst_rows": [{"row": int(rows[i]), "score": round(float(score[i]), 5),
                                        "flagged": bool(mask[i])} for i in order]}
            flagged[t] = {int(rows[i]): round(float(score[i]), 5) for i in np.flatnonzero(mask)}
            metrics[f"{t}_rate"] = float(mask.mean())
        non_iid = lab.get_info("non_iid").get("p-value") if "non_iid" in table else None
        if non_iid is not None:
            metrics["non_iid_p_value"] = float(non_iid)
        text = ", ".join(f"{v['issues']} {k.replace('_', ' ')}" for k, v in table.items())
        return Measurement(check=self.id, metrics=metrics,
                           details={"issue_types": table, "flagged": flagged, "rows_examined": int(len(rows)),
                                    "subsampled": bool(n > MAX_ROWS), "features": "baseline penultimate embeddings",
                                    "non_iid_p_value": None if non_iid is None else float(non_iid)},
                           summary=f"Datalab on {len(rows)} training rows: {text}")

"""cleanlab Datalab issue types that add signal beyond label issues and leakage, on the training split: outliers,
near duplicates inside train, non-IID ordering, class imbalance and underperforming groups. Datalab runs on the
baseline's penultimate embeddings (and, for underperforming groups, the label check's out-of-sample
probabilities, when that check ran first). It has no notion of splits and a relative near-duplicate threshold, so
train/test leakage is the leakage check's job (REFERENCE section 6). Training sets above ``datalab.max_rows`` are
subsampled (seeded)."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from audit.checks.base import AuditContext, RunCheck, controls, register, settings
from audit.checks.label_issues import LabelIssues, OutOfFoldProbabilities
from audit.checks.run_view import NO_EMBEDDINGS, TrainEmbeddings, embedding_unavailable
from audit.config.data_checks import DatalabConfig
from audit.core.result import Details, Measurement

ISSUE_TYPES = ("outlier", "near_duplicate", "non_iid", "class_imbalance", "underperforming_group")
MAX_LISTED = 25


@dataclass(frozen=True)
class DatalabRow:
    row: int
    score: float
    flagged: bool


@dataclass(frozen=True)
class IssueType:
    issues: int
    score: float                        # Datalab's overall score of the issue type (lower: worse)
    worst_rows: tuple[DatalabRow, ...]


@dataclass(frozen=True)
class DatalabDetails(Details):
    issue_types: dict[str, IssueType]
    flagged: dict[str, dict[str, float]]   # issue type -> training row -> score
    rows_examined: int
    subsampled: bool
    features: str
    non_iid_p_value: float | None


@register
class Datalab(RunCheck):
    id = "datalab"
    rank = 130
    title = "Data issues found by cleanlab Datalab (training split)"
    controls = controls(MAP_2_3="supporting", MEASURE_2_1="supporting")
    description = ("Datalab outlier, near_duplicate, non_iid, class_imbalance and underperforming_group issue types "
                   "on the baseline's embeddings of the training split.")
    after = (LabelIssues,)   # underperforming groups use its out-of-sample probabilities when it ran
    Details = DatalabDetails
    Config = DatalabConfig   # its [checks.datalab] table (in the config room: audit/methods uses it too)
    triage_columns = ("outlier_score", "near_duplicate_score", "underperforming_group_score")

    def triage(self, details: DatalabDetails, row) -> None:
        """The flagged training rows' scores of the issue types it has a column for."""
        for t, scores in details.flagged.items():
            if f"{t}_score" in self.triage_columns:
                for i, score in scores.items():
                    row("train", int(i))[f"{t}_score"] = score

    def not_applicable(self, ctx: AuditContext) -> str:
        return embedding_unavailable(ctx)

    def measure(self, ctx: AuditContext) -> Measurement:
        from cleanlab import Datalab as CleanlabDatalab
        emb = ctx.get(TrainEmbeddings)
        if emb is None:
            return Measurement(check=self.id, skipped=NO_EMBEDDINGS)
        labels = ctx.data.y_train.numpy()
        n = len(labels)
        max_rows = settings(self, ctx.config).max_rows
        rows = np.arange(n)
        if n > max_rows:
            rows = np.sort(np.random.default_rng(ctx.config.seed).choice(n, max_rows, replace=False))
        oof = ctx.computed(OutOfFoldProbabilities)  # when the label-issues check ran
        probs = None if oof is None else oof.probs
        types: dict[str, dict] = {t: {} for t in ISSUE_TYPES if t != "underperforming_group" or probs is not None}
        lab = CleanlabDatalab(data={"label": labels[rows]}, label_name="label", verbosity=0)
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
            table[t] = IssueType(issues=int(mask.sum()), score=float(r["score"]),
                                 worst_rows=tuple(DatalabRow(row=int(rows[i]), score=round(float(score[i]), 5),
                                                             flagged=bool(mask[i])) for i in order))
            flagged[t] = {str(int(rows[i])): round(float(score[i]), 5) for i in np.flatnonzero(mask)}
            metrics[f"{t}_rate"] = float(mask.mean())
        non_iid = lab.get_info("non_iid").get("p-value") if "non_iid" in table else None
        if non_iid is not None:
            metrics["non_iid_p_value"] = float(non_iid)
        text = ", ".join(f"{v.issues} {k.replace('_', ' ')}" for k, v in table.items())
        return Measurement(check=self.id, metrics=metrics,
                           details=DatalabDetails(issue_types=table, flagged=flagged, rows_examined=int(len(rows)),
                                                  subsampled=bool(n > max_rows),
                                                  features="baseline penultimate embeddings",
                                                  non_iid_p_value=None if non_iid is None else float(non_iid)),
                           summary=f"Datalab on {len(rows)} training rows: {text}")

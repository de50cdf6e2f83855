"""triage.csv: one row per flagged data row (training rows first, then test rows), with every data detector's
score side by side, so a reviewer can sort, filter and decide row by row. Rendered from the result model like
every other format; columns are empty where a detector did not run or has no score for that row."""
from __future__ import annotations

import csv
import io

from audit.core.result import AuditResult

COLUMNS = ("split", "row", "given_label", "predicted_label", "label_issue", "label_issue_rank", "label_quality",
           "leaked_to_test_rows", "leak_distance", "leak_exact", "leak_conflicting_label", "outlier_score",
           "near_duplicate_score", "underperforming_group_score", "backdoor_ratio_z", "backdoor_spectral_z",
           "backdoor_clustered", "test_outlier_score")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading quote (OWASP's
    CSV-injection rule); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _details(result: AuditResult, check: str):
    return next((f.details for f in result.findings if f.check == check and f.details is not None), None)


def render_triage(result: AuditResult) -> str:
    rows: dict[tuple[str, int], dict] = {}

    def row(split: str, i: int) -> dict:
        return rows.setdefault((split, i), {"split": split, "row": i})

    li = _details(result, "label_issues")
    if li is not None:
        by_index = {t.index: t for t in li.top_issues}
        for rank, i in enumerate(li.indices_ranked, 1):
            r = row("train", i)
            r.update(label_issue=True, label_issue_rank=rank)
            if i < len(li.label_quality):
                r["label_quality"] = li.label_quality[i]
            if i in by_index:
                r.update(given_label=by_index[i].given_label, predicted_label=by_index[i].predicted_label)
        if li.test_split is not None:
            tops = {t.index: t for t in li.test_split.top_issues}
            for rank, i in enumerate(li.test_split.indices_ranked, 1):
                r = row("test", i)
                r.update(label_issue=True, label_issue_rank=rank)
                if i in tops:
                    r.update(given_label=tops[i].given_label, predicted_label=tops[i].predicted_label)
    lk = _details(result, "leakage")
    if lk is not None:
        for p in lk.flagged:
            row("test", p.test_row).update(leak_distance=p.distance, leak_exact=p.exact,
                                           leak_conflicting_label=p.conflicting_label)
            tr = row("train", p.train_row)
            tr["leaked_to_test_rows"] = " ".join(filter(None, [str(tr.get("leaked_to_test_rows", "")),
                                                                str(p.test_row)])).strip()
            prev = tr.get("leak_distance")
            tr["leak_distance"] = p.distance if prev is None else min(prev, p.distance)
            tr["leak_exact"] = bool(tr.get("leak_exact")) or p.exact
    dl = _details(result, "datalab")
    if dl is not None:
        for t, scores in dl.flagged.items():
            if f"{t}_score" in COLUMNS:
                for i, score in scores.items():
                    row("train", int(i))[f"{t}_score"] = score
    to = _details(result, "test_outliers")
    if to is not None:
        for i, score in to.flagged.items():
            row("test", int(i))["test_outlier_score"] = score
    bd = _details(result, "backdoor")
    if bd is not None:
        for p in bd.flagged:
            row("train", p.row).update(backdoor_ratio_z=p.ratio_z, backdoor_spectral_z=p.spectral_z,
                                       backdoor_clustered=p.clustered)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for key in sorted(rows, key=lambda k: (k[0] != "train", k[1])):
        w.writerow({c: _cell(rows[key].get(c, "")) for c in COLUMNS})
    return buf.getvalue()

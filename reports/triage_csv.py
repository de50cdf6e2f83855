"""triage.csv: one row per flagged data row (training rows first, then test rows), with every data detector's
score side by side, so a reviewer can sort, filter and decide row by row. Rendered from the result model like
every other format; columns are empty where a detector did not run or has no score for that row."""
from __future__ import annotations

import csv
import io

from audit.checks import CHECKS
from audit.core.result import AuditResult

# the shared columns, then each check's own (``triage_columns``): the training-row detectors', then the test-row
# ones' (``triage_split``), each group in registry order
COLUMNS = ("split", "row", "given_label", "predicted_label") + tuple(
    col for split in ("train", "test") for c in CHECKS.values() if c.triage_split == split for col in c.triage_columns)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading quote (OWASP's
    CSV-injection rule); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _details(result: AuditResult, check: str):
    """The check's details: the candidate's for a variant check, else the first finding's."""
    found = [f for f in result.findings if f.check == check and f.details is not None]
    found.sort(key=lambda f: f.variant not in (None, result.candidate))
    return found[0].details if found else None


def render_triage(result: AuditResult) -> str:
    rows: dict[tuple[str, int], dict] = {}

    def row(split: str, i: int) -> dict:
        return rows.setdefault((split, i), {"split": split, "row": i})

    for check_id, check in CHECKS.items():
        details = _details(result, check_id) if check.triage_columns else None
        if details is not None:
            check.triage(details, row)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for key in sorted(rows, key=lambda k: (k[0] != "train", k[1])):
        w.writerow({c: _cell(rows[key].get(c, "")) for c in COLUMNS})
    return buf.getvalue()

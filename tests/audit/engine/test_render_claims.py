"""`advaudit render` recomputes the framework claims by today's rules: a stored table (an older release's, or one
edited by hand) is never rendered as it was stored."""
from __future__ import annotations

import json

import pytest

from audit.cli import main

pytestmark = pytest.mark.slow  # the session demo run


def test_a_forged_fairness_claim_in_a_results_json_is_not_rendered(demo_run, tmp_path, capsys):
    _code, _out, data = demo_run
    data = json.loads(json.dumps(data))
    row = next(n for n in data["nist"] if n["id"] == "MEASURE 2.11")
    assert row["status"] == "not measured"  # what the run itself says
    row.update(status="evidence", findings=["run:fairness_audit"], reason="",
               basis=["run:fairness_audit: demographic parity within 1% across 12 protected groups"])
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data), encoding="utf-8")
    assert main(["render", str(forged), "--out", str(tmp_path / "r"), "--format", "html,md"]) in (0, 1, 4)
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    again = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert "fairness_audit" not in html and "demographic parity" not in html
    assert next(n for n in again["nist"] if n["id"] == "MEASURE 2.11")["status"] == "not measured"
    # the genuine claims survive the recomputation unchanged
    assert {n["id"]: n["status"] for n in again["nist"] if n["id"] != "MEASURE 2.11"} == \
        {n["id"]: n["status"] for n in data["nist"] if n["id"] != "MEASURE 2.11"}

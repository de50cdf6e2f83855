"""MLflow: one run per audit in a real local store, read back with MlflowClient."""
from __future__ import annotations

import pytest


def test_an_audit_logs_one_mlflow_run_with_metrics_tags_params_and_the_bundle(demo_run, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from audit.api.mlflow_log import log_run
    from audit.engine.results_io import read_results
    _code, out, results = demo_run
    result = read_results(out / "results.json")
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_run(result, out, uri, "advaudit-test")
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.tags["verdict"] == results["verdict"].upper()
    assert run.data.tags["candidate"] == results["candidate"]
    assert len(run.data.metrics) >= 20
    assert run.data.metrics["pgd_at/clean_accuracy"] == pytest.approx(
        next(v for v in results["variants"] if v["name"] == "pgd_at")["clean_accuracy"]["value"])
    assert run.data.params["policy_sha256"] == results["policy"]["sha256"]
    assert run.data.params["threat_eps"] == "0.1"
    artifacts = {a.path for a in client.list_artifacts(run_id, "advaudit")}
    assert {"advaudit/report.html", "advaudit/results.json", "advaudit/SHA256SUMS"} <= artifacts
    exp = client.get_experiment_by_name("advaudit-test")
    assert len(client.search_runs([exp.experiment_id])) == 1

"""The default MLflow store is one stock MLflow 3 reads back: ``sqlite:///mlflow.db`` in the working directory,
written without advaudit touching any MLFLOW_* variable, read in a fresh process with a clean environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

READ_BACK = """
import json, sys
import mlflow
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri("sqlite:///mlflow.db")  # what the README tells a user to open
client = MlflowClient()
run = client.get_run(sys.argv[1])
frame = mlflow.search_runs(experiment_names=["advaudit-store"])
print(json.dumps({"params": run.data.params, "metrics": run.data.metrics, "tags": run.data.tags,
                  "ids": list(frame["run_id"]), "status": run.info.status,
                  "artifacts": [a.path for a in client.list_artifacts(run.info.run_id, "advaudit")]}))
"""


def test_the_default_store_is_read_back_by_stock_mlflow_in_a_fresh_process(demo_run, demo_result, tmp_path,
                                                                           monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from audit.api.mlflow_log import log_run, metrics_of, params_of
    _code, out, results = demo_run
    for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    run_id = log_run(demo_result, out, "", "advaudit-store")  # "" = the default store
    assert (tmp_path / "mlflow.db").is_file() and not (tmp_path / "mlruns" / "meta.yaml").exists()
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # nothing switched on behind the user's back
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    done = subprocess.run([sys.executable, "-c", READ_BACK, run_id], cwd=tmp_path, env=clean, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    back = json.loads(done.stdout.strip().splitlines()[-1])
    assert back["ids"] == [run_id] and back["status"] == "FINISHED"  # one run, closed
    assert back["tags"]["verdict"] == results["verdict"].upper() and back["tags"]["candidate"] == results["candidate"]
    assert back["params"] == params_of(demo_result)
    assert back["params"]["policy_sha256"] == results["policy"]["sha256"]
    assert back["params"]["threat_eps"] == f"{results['threat_model']['eps']:g}"
    expected = metrics_of(demo_result)
    assert set(back["metrics"]) == set(expected) and len(expected) >= 20
    assert all(back["metrics"][k] == pytest.approx(v) for k, v in expected.items())
    assert back["metrics"]["pgd_at/clean_accuracy"] == pytest.approx(
        next(v for v in results["variants"] if v["name"] == "pgd_at")["clean_accuracy"]["value"])
    assert {"advaudit/report.html", "advaudit/results.json", "advaudit/SHA256SUMS"} <= set(back["artifacts"])


def test_the_cli_names_the_store_it_logged_to(demo_result, tmp_path, monkeypatch, capsys):
    from audit.api.outputs import Outcome
    from audit.cli import main
    monkeypatch.chdir(tmp_path)
    written = {"html": tmp_path / "o" / "report.html", "json": tmp_path / "o" / "results.json"}
    monkeypatch.setattr("audit.api.outputs.run_to", lambda *a, **k: Outcome(demo_result, written, "run-7"))
    main(["demo", "--out", str(tmp_path / "o")])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("mlflow run:"))
    assert line == f"mlflow run: run-7 in sqlite:///{(tmp_path / 'mlflow.db').resolve().as_posix()}"

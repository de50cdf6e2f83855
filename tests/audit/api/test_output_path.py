"""One output path: the CLI and ``audit.run`` both go through ``audit.api.outputs.publish``, which renders every
format once, sets the run record once (it times the rendering of the reports) and writes the bundle from plain
data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import audit
from audit.api import outputs
from audit.cli import main
from audit.config import AuditConfig, TrainingConfig
from audit.engine.pipeline import run_audit_with_context
from reports import FORMATS

TINY = AuditConfig(checks=("input_validation", "clean_accuracy"), training=TrainingConfig(epochs=1))


@pytest.fixture(scope="module")
def finished(digits):
    """(result without its run record, context) of one tiny real run."""
    return run_audit_with_context(TINY, data=digits)


@pytest.fixture
def counted(monkeypatch, finished):
    """Calls of every renderer and of ``publish``; the pipeline answers with the tiny run."""
    calls: dict = {"publish": 0}

    def counting(fmt, fn):
        def render(result):
            calls[fmt] = calls.get(fmt, 0) + 1
            return fn(result)
        return render
    for fmt, (name, fn) in list(FORMATS.items()):
        monkeypatch.setitem(FORMATS, fmt, (name, counting(fmt, fn)))
    real = outputs.publish

    def publish(*a, **k):
        calls["publish"] += 1
        return real(*a, **k)
    monkeypatch.setattr(outputs, "publish", publish)
    monkeypatch.setattr("audit.engine.pipeline.run_audit_with_context", lambda config, **_: finished)
    return calls


def written_record(out):
    return json.loads((out / "results.json").read_text(encoding="utf-8"))["run_record"]


def test_the_cli_renders_each_format_once_through_the_one_output_path(counted, tmp_path):
    out = tmp_path / "cli"
    assert main(["-q", "demo", "--out", str(out)]) in (0, 1)
    assert counted == {"publish": 1, "html": 1, "json": 1, "md": 1, "csv": 1}
    stages = [s["name"] for s in written_record(out)["stages"]]
    assert stages[0] == "load libraries and config" and "render the report" not in stages  # the record is the run's
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"{len(stages)} stages" in html  # the report shows the very record results.json holds
    assert (out / "models" / "baseline.safetensors").is_file() and (out / "policy.toml").is_file()


def test_audit_run_takes_the_same_path(counted, tmp_path):
    out = tmp_path / "api"
    result = audit.run(config={"checks": ["input_validation", "clean_accuracy"]}, out=out)
    assert counted == {"publish": 1, "html": 1, "json": 1, "md": 1, "csv": 1}
    record = written_record(out)
    assert "render the report" not in [s["name"] for s in record["stages"]]
    assert result.result.run_record.wall_seconds == record["wall_seconds"]  # the record was set once
    assert (out / "models" / "baseline.safetensors").is_file()


def test_without_an_output_directory_nothing_is_rendered_and_the_record_is_set(counted):
    result = audit.run(config={"checks": ["input_validation", "clean_accuracy"]})
    assert counted == {"publish": 1}
    assert result.result.run_record is not None


def test_the_bundle_is_made_from_plain_data(finished, tmp_path):
    from types import SimpleNamespace

    from audit.evidence import bundle
    result, ctx = finished
    model_file = SimpleNamespace(source="m.pt", file_sha256="ab" * 32)
    inputs = bundle.bundle_inputs(ctx.config, ctx.policy, ctx.variants, model_file)
    assert all(isinstance(w.state, dict) for w in inputs.weights) and inputs.policy_text == ctx.policy.text
    files = bundle.artifacts(inputs)
    assert set(files) == {"models/baseline.safetensors", "config.json", "policy.toml"}
    assert bundle.bundle_facts(result, inputs)["model_file"] == {"source": "m.pt", "sha256": "ab" * 32}
    assert "models/baseline.safetensors" not in bundle.artifacts(
        bundle.bundle_inputs(ctx.config, ctx.policy, ctx.variants, include_weights=False))
    assert "audit.engine" not in Path(bundle.__file__).read_text(encoding="utf-8")  # no live context needed


def test_mlflow_is_logged_once_after_the_output_is_written(counted, monkeypatch, tmp_path):
    logged = []

    def log(result, out, uri, experiment):
        assert (out / "results.json").is_file()  # the output directory is complete first
        logged.append((uri, experiment, result.run_record is not None))
        return "run-1", ""
    monkeypatch.setattr("audit.api.tracking_check.check_tracking_uri", lambda uri: None)
    monkeypatch.setattr("audit.api.mlflow_log.log_run_or_warn", log)
    result = audit.run(config={"checks": ["input_validation", "clean_accuracy"]}, out=tmp_path / "m",
                       mlflow="file:///nowhere")
    assert logged == [("file:///nowhere", "advaudit", True)] and result.mlflow_run_id == "run-1"

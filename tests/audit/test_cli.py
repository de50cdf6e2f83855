"""The CLI's exit codes and error messages are the CI contract."""
import json

import pytest

from audit.cli import main


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("advaudit: error: config file not found") and err.count("\n") == 1
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_unknown_config_key_exits_2_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "a.toml"
    cfg.write_text("[attacks]\nsteps = 10\n")
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "attacks.steps: unknown key" in err and "pgd_steps" in err and "Traceback" not in err


def test_unwritable_output_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_internal_errors_exit_3_without_a_traceback(monkeypatch, tmp_path, capsys):
    def boom(config, **_):
        raise RuntimeError("kaboom")
    monkeypatch.setattr("audit.engine.pipeline.run_audit_with_context", boom)
    assert main(["demo", "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaboom" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_render_bad_results_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    assert main(["render", str(bad), "--out", str(tmp_path / "o")]) == 2
    bad.write_text(json.dumps({"schema_version": "2.0", "verdikt": "go"}))
    assert main(["render", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "field" in capsys.readouterr().err


@pytest.mark.slow
def test_render_rebuilds_the_report_and_a_failing_render_keeps_the_old_output(demo_run, tmp_path, monkeypatch):
    code, out, _data = demo_run
    target = tmp_path / "again"
    assert main(["render", str(out / "results.json"), "--out", str(target)]) == code
    assert (target / "report.html").read_text() == (out / "report.html").read_text()
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken(result):
        raise RuntimeError("renderer crashed half-way")
    from reports import FORMATS
    monkeypatch.setitem(FORMATS, "md", ("summary.md", broken))
    assert main(["render", str(out / "results.json"), "--out", str(target)]) == 3
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # nothing lost, nothing half-written
    assert not list(tmp_path.glob(".again.*"))


def test_init_writes_a_template_that_loads_to_the_defaults_and_never_overwrites(tmp_path, capsys):
    import dataclasses

    from audit.config import AuditConfig, load_config
    path = tmp_path / "advaudit.toml"
    assert main(["init", str(path)]) == 0
    assert dataclasses.replace(load_config(path), base_dir="") == AuditConfig()
    path.write_text("# my edits\n")
    assert main(["init", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == "# my edits\n"


TINY = """seed = 0
checks = ["input_validation", "clean_accuracy"]
[data]
source = "digits"
[training]
epochs = 1
"""


def test_run_finds_advaudit_toml_and_prints_a_json_summary(tmp_path, monkeypatch, capsys):
    from audit.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "advaudit.toml").write_text(TINY, encoding="utf-8")
    code = main(["run", "--out", "out", "--json", "--format", "md,csv"])
    summary = json.loads(capsys.readouterr().out)
    assert code == summary["exit_code"] and summary["verdict"] in ("NO-GO", "INCOMPLETE")  # narrowed: never GO
    assert any("required checks not enabled" in g for g in summary["evidence_gaps"])
    assert {f["id"] for f in summary["findings"]} == {"input_validation", "clean_accuracy:baseline"}
    assert set(summary["outputs"]) == {"html", "json", "md", "csv"}
    assert (tmp_path / "out" / "triage.csv").is_file()


def test_run_without_a_config_here_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    from audit.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "advaudit init" in capsys.readouterr().err


def test_quiet_render_reproduces_every_output_and_compare_speaks_json(demo_run, tmp_path, capsys):
    from audit.cli import main
    _code, out, results = demo_run
    capsys.readouterr()
    assert main(["-q", "render", str(out / "results.json"), "--out", str(tmp_path / "r")]) == results_code(results)
    assert capsys.readouterr().out == ""
    assert {"report.html", "results.json", "summary.md", "triage.csv"} <= {p.name for p in (tmp_path / "r").iterdir()}
    assert main(["compare", str(out), str(out), "--format", "json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["n"] == results["dataset"]["n_test"] and comparison["deltas"]
    assert main(["demo", "--out", str(tmp_path / "x"), "--format", "docx"]) == 2
    assert "not a format" in capsys.readouterr().err


def results_code(results):
    return {"go": 0, "no-go": 1, "incomplete": 4}.get(results["verdict"], 3)

"""The run record: stages in start order with their parent, passes counted by hooks on every wrapped model, the
stages covering the wall time, the report's table and `--profile`."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from audit.core.result import StageRecord
from audit.engine.record import Recorder, profile_table
from audit.models.reference import SmallCNN


def test_stages_nest_in_start_order_and_count_forward_and_backward_rows():
    rec = Recorder()
    model = SmallCNN()
    rec.counter.attach(model)
    x, y = torch.rand(12, 1, 8, 8), torch.randint(0, 10, (12,))
    with rec.stage("outer"):
        with torch.no_grad():
            model(x)                                  # 12 forward rows
        with rec.stage("inner"):
            xr = x[:5].clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xr), y[:5]), xr)  # 5 forward+backward rows
            time.sleep(0.05)
    record = rec.record()
    assert [s.name for s in record.stages] == ["outer", "inner"]           # the parent first
    outer, inner = record.stages
    assert inner.parent == "outer" and outer.parent == ""
    assert (inner.example_passes, inner.forward_passes) == (5, 0)
    assert (outer.example_passes, outer.forward_passes) == (5, 12)         # a parent includes its children
    assert outer.seconds >= inner.seconds >= 0.05
    assert outer.peak_host_mb and outer.peak_host_mb > 0
    rec.counter.detach()
    with torch.no_grad():
        model(x)
    assert rec.counter.forward == 17                                       # detached: no longer counted


def test_accounted_is_the_share_of_wall_time_the_top_level_stages_cover():
    rec = Recorder()
    with rec.stage("work"):
        time.sleep(0.1)
    time.sleep(0.1)                                                        # unrecorded time
    record = rec.record()
    assert 0.35 < record.accounted < 0.65
    table = profile_table(record)
    assert "work" in table and "stages account for" in table


def test_a_stage_measured_elsewhere_is_added_with_its_node():
    rec = Recorder(executor="ray")
    rec.add(StageRecord("fold 1/5", 1.5, example_passes=100, node="worker-2"))
    record = rec.record()
    assert record.executor == "ray" and record.stages[0].node == "worker-2"


def test_the_demo_record_covers_the_wall_time_stage_by_stage(demo_run):
    _code, out, data = demo_run
    rr = data["run_record"]
    assert rr["accounted"] >= 0.95, rr["accounted"]
    names = [s["name"] for s in rr["stages"]]
    for expected in ("load libraries and config", "prepare (policy, data, model, pre-flight)", "train baseline",
                     "train pgd_at", "check label_issues", "check robustness:pgd_at", "validity C6:pgd_at",
                     "attack grid:pgd_at", "assemble the result"):
        assert expected in names, expected
    # the record ends with the result and its provenance (hashing what the user supplied): every format shows the
    # same record, set before any of them is rendered
    assert names[-2:] == ["assemble the result", "provenance (hash the supplied files)"], names[-3:]
    stage = {s["name"]: s for s in rr["stages"]}
    training = stage["train pgd_at"]
    # PGD-7 adversarial training: at least 8 forward+backward rows per training row and epoch
    epochs, n_train = data["config"]["training"]["epochs"], data["dataset"]["n_train"]
    assert training["example_passes"] >= 8 * epochs * (n_train - 512)
    assert stage["train baseline"]["example_passes"] >= epochs * (n_train - 512)
    assert stage["validity C6:pgd_at"]["parent"] == "check attack_validity:pgd_at"
    assert stage["validity C6:pgd_at"]["forward_passes"] > 0 and stage["validity C6:pgd_at"]["example_passes"] == 0
    top = sum(s["seconds"] for s in rr["stages"] if not s["parent"])
    assert top <= rr["wall_seconds"] * 1.001
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Where the time went" in html and "validity C6:pgd_at" in html


def test_profile_prints_the_record_as_a_table(tmp_path, capsys, digits):
    import numpy as np

    from audit.cli import main
    np.savez(tmp_path / "d.npz", x_train=digits.x_train[:100].numpy(), y_train=digits.y_train[:100].numpy(),
             x_test=digits.x_test[:40].numpy(), y_test=digits.y_test[:40].numpy())
    (tmp_path / "c.toml").write_text('checks = ["clean_accuracy", "calibration"]\n[data]\nsource = "npz"\n'
                                     'path = "d.npz"\n[model]\nfactory = "audit.models:build_small_cnn"\n'
                                     '[training]\nepochs = 1\n', encoding="utf-8")
    code = main(["run", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o"), "--profile"])
    out = capsys.readouterr().out
    assert code in (0, 1, 4)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["stage", "seconds"]
    assert any(line.startswith("train baseline") for line in lines)
    assert any(line.startswith("check calibration:baseline") for line in lines)
    assert "stages account for" in out and "then rendering the formats took" in out
    assert "not in the record they hold" in out

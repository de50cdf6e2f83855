"""Executors: a Ray run gives the local run's bits (per-example correctness, accuracies, verdict, every finding),
also when a worker dies mid-run; an unreachable cluster is exit 2 before any work; the attack grid's sharding
does not change a bit."""
from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np
import pytest
import torch

from audit.config.attacks import AttackConfig
from audit.config.data_checks import BackdoorConfig, LabelIssuesConfig
from audit.config.execution import ExecutionConfig
from audit.config.load import demo_config
from audit.config.sections import ModelConfig, TrainingConfig
from audit.engine.execution.local import LocalExecutor
from audit.engine.record import Recorder
from audit.methods.evaluation import GridRun, evaluate_robustness

CRASHY = '''
import os
from audit.models.reference import SmallCNN


class Crashy(SmallCNN):
    """Kills the worker process running it, once (a lost node), when a marker path is set and absent."""

    def forward(self, x):
        marker = os.environ.get("ADVAUDIT_TEST_CRASH_MARKER", "")
        if marker and os.getpid() != int(os.environ["ADVAUDIT_TEST_DRIVER_PID"]) and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return super().forward(x)


def make():
    return Crashy()
'''


def small_config(base_dir, **execution):
    c = demo_config()
    return dataclasses.replace(
        c, base_dir=str(base_dir), model=ModelConfig(factory="crashy:make"),
        training=TrainingConfig(epochs=3, batch_size=128, lr=3e-3),
        attacks=dataclasses.replace(c.attacks, batch_size=128),
        label_issues=LabelIssuesConfig(epochs=2, folds=3), backdoor=BackdoorConfig(selftest_epochs=2),
        checks=("clean_accuracy", "robustness", "label_issues", "backdoor"),
        execution=ExecutionConfig(**execution))


@pytest.fixture(autouse=True)
def no_ray_left_behind():
    """Each test starts without a Ray in this process and leaves none, whatever it asserted."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def stable(d):
    """The result without what legitimately differs between runs (timings, the record, the environment)."""
    if isinstance(d, dict):
        return {k: stable(v) for k, v in d.items() if not any(
            w in k for w in ("second", "created", "duration", "run_record", "environment", "execution"))}
    if isinstance(d, list):
        return [stable(v) for v in d]
    return d


@pytest.mark.slow
def test_the_attack_grid_gives_the_same_bits_however_the_test_set_is_sharded(trained_cnn, digits):
    x, y = digits.x_test[:300], digits.y_test[:300]
    settings = AttackConfig(attacks=("pgd", "apgd_ce", "square"), eps=(0.05, 0.1), batch_size=64, early_stop=True,
                            norm="linf", pgd_steps=10, apgd_steps=20, square_queries=100)
    grid = GridRun(settings=settings, clip=(0.0, 1.0), device=torch.device("cpu"), seed=3)
    runs = [evaluate_robustness(trained_cnn, x, y, grid, executor=LocalExecutor(recorder=Recorder()), shards=k)
            for k in (1, 3, 5)]
    for other in runs[1:]:
        assert other.correct.keys() == runs[0].correct.keys()
        for key in runs[0].correct:
            assert np.array_equal(other.correct[key], runs[0].correct[key]), key
        assert [p.example_passes for p in other.points] == [p.example_passes for p in runs[0].points]


@pytest.mark.slow
def test_a_ray_run_equals_the_local_run_bit_for_bit_even_when_a_worker_dies(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from audit.engine.pipeline import run_audit
    (tmp_path / "crashy.py").write_text(CRASHY, encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray task with num_cpus = 1 runs torch on 1 thread: the same reduction order
    try:
        local = run_audit(small_config(tmp_path, threads=1)).to_dict()
    finally:
        torch.set_num_threads(threads)
    marker = tmp_path / "crashed"
    monkeypatch.setenv("ADVAUDIT_TEST_CRASH_MARKER", str(marker))
    monkeypatch.setenv("ADVAUDIT_TEST_DRIVER_PID", str(os.getpid()))
    remote = run_audit(small_config(tmp_path, executor="ray", cluster_cpus=2, num_cpus=1, shards=2,
                                     threads=1)).to_dict()   # the driver's own work on 1 thread too
    assert marker.exists(), "no worker was killed: the fault was not exercised"
    assert stable(remote) == stable(local)
    record = remote["run_record"]
    assert record["executor"] == "ray"
    units = [s for s in record["stages"] if s["node"]]
    assert {"train baseline", "train pgd_at", "fold 1/3", "attack shard 2/2"} <= {s["name"] for s in units}
    assert all(s["parent"] for s in units if s["name"].startswith(("fold", "attack shard")))


def test_an_unreachable_cluster_is_exit_2_before_any_work(tmp_path, capsys):
    pytest.importorskip("ray")
    from audit.cli import main
    t = time.perf_counter()
    code = main(["demo", "--out", str(tmp_path / "out"), "--executor", "ray", "--ray-address", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "127.0.0.1:1" in err and len(err.splitlines()) == 1
    assert time.perf_counter() - t < 15
    assert not (tmp_path / "out").exists()


def test_a_ray_this_process_already_holds_does_not_hide_an_unreachable_address(tmp_path):
    """A notebook that called ray.init() and then audits against a named cluster it cannot reach: exit 2 naming
    the address, not a run on the local Ray it happens to hold."""
    ray = pytest.importorskip("ray")
    from audit.core.errors import UsageError
    from audit.engine.execution.ray_cluster import RayExecutor
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    with pytest.raises(UsageError, match="127.0.0.1:1"):
        RayExecutor(ExecutionConfig(executor="ray", address="127.0.0.1:1"))
    assert ray.is_initialized()   # the caller's Ray is left to the caller


def test_an_unknown_executor_is_exit_2(tmp_path, capsys):
    from audit.cli import main
    cfg = tmp_path / "a.toml"
    cfg.write_text('[data]\nsource = "digits"\n[execution]\nexecutor = "dask"\n', encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "execution.executor" in capsys.readouterr().err

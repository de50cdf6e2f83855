"""The run's torch threads: `[execution] threads` is checked; automatic is the process's affinity (not the
machine's cores) shared among the audits running on the machine; a run sets them where every entry point passes
(the executor) and `audit.run` gives the caller's count back; a busy machine is warned about; a Ray task runs on its
num_cpus threads."""
from __future__ import annotations

import dataclasses
import logging
import os

import pytest
import torch

from audit.config.execution import ExecutionConfig
from audit.core.errors import UsageError
from audit.core.work import Unit
from audit.engine.execution import threads as th
from audit.engine.execution.base import task_threads
from audit.engine.execution.local import LocalExecutor


@pytest.fixture(autouse=True)
def caller_threads(monkeypatch, tmp_path):
    """Torch at 2 threads, restored after; the folder of running audits is this test's own, never the machine's."""
    monkeypatch.setattr(th, "runs_dir", lambda: tmp_path)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with th.kept_threads():
        torch.set_num_threads(2)
        yield


def affinity(monkeypatch, cpus: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", 10**9])
def test_threads_must_be_zero_or_a_count_and_a_bad_one_names_the_key(bad):
    with pytest.raises(UsageError, match=r"^execution\.threads: .* give 0 \(automatic"):
        ExecutionConfig(threads=bad).validate("execution")
    for good in (0, 1, 64):
        ExecutionConfig(threads=good).validate("execution")


def test_a_config_file_with_a_bad_threads_value_is_a_usage_error(tmp_path):
    from audit.engine.configure import from_mapping
    assert from_mapping({"execution": {"threads": 3}}, tmp_path).execution.threads == 3
    for bad in (-2, 0.5):
        with pytest.raises(UsageError, match="threads"):
            from_mapping({"execution": {"threads": bad}}, tmp_path).validate("config")


def test_the_cpus_are_the_process_affinity_not_the_machine_count(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    affinity(monkeypatch, 3)
    assert th.available_cpus() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    assert th.available_cpus() == 64


@pytest.mark.parametrize(("cpus", "cap", "audits", "expected"),
                         [(2, 2, 1, 2), (2, 2, 2, 1), (2, 2, 5, 1), (8, 4, 1, 4), (8, 8, 3, 2), (1, 16, 1, 1)])
def test_automatic_shares_the_cpus_among_the_audits_never_above_the_callers_count(cpus, cap, audits, expected):
    assert th.auto_threads(cpus, cap, audits) == expected


def test_automatic_threads_follow_the_affinity_and_a_lower_caller_count_stands(monkeypatch):
    affinity(monkeypatch, 1)   # `taskset -c 0`: torch's default would still be the machine's 2 cores
    run = th.RunThreads(0, None)
    assert torch.get_num_threads() == 1 == run.threads
    affinity(monkeypatch, 8)
    torch.set_num_threads(1)   # OMP_NUM_THREADS=1, or the caller's torch.set_num_threads(1)
    th.RunThreads(0, None)
    assert torch.get_num_threads() == 1
    th.RunThreads(3, None)     # [execution] threads = 3: exactly that
    assert torch.get_num_threads() == 3


OTHER = os.getpid() + 1_000_000   # a pid no process has: another process's audit, simulated here


def test_a_second_audit_takes_half_the_cores_and_the_first_gives_one_back_until_it_ends(monkeypatch, tmp_path):
    affinity(monkeypatch, 2)
    first = th.RunThreads(0, tmp_path)
    assert first.threads == 2
    second = th.RunningAudits(tmp_path, pid=OTHER)   # another process starts an audit: it counts this one
    assert second.count() == 2 and first.apply() == 1   # the first chooses again before its next unit
    assert len(list(tmp_path.glob("*.lock"))) == 2
    second.close()
    assert first.apply() == 2 and len(list(tmp_path.glob("*.lock"))) == 1
    first.close()
    assert not list(tmp_path.iterdir())


def test_audits_are_counted_by_process_so_an_executor_left_open_here_does_not_count(monkeypatch, tmp_path):
    affinity(monkeypatch, 2)
    left_open = LocalExecutor(ExecutionConfig())   # e.g. a fixture's context, never closed
    assert th.RunThreads(0, tmp_path).threads == 2
    assert th.RunningAudits(tmp_path, pid=OTHER).count() == 2   # another process sees one process, not two
    left_open.close()


def test_a_killed_audits_file_is_not_counted_and_is_removed(tmp_path):
    dead = tmp_path / f"{OTHER + 1}-deadbeef.lock"
    dead.write_text("")        # nobody holds its lock: its process is gone
    ours = th.RunningAudits(tmp_path)
    other = th.RunningAudits(tmp_path, pid=OTHER)   # a live one (its lock held)
    assert ours.count() == 2 and not dead.exists()
    other.close()
    assert ours.count() == 1
    ours.close()


def test_the_folder_of_running_audits_is_private_or_not_used(monkeypatch, tmp_path):
    monkeypatch.undo()   # the real runs_dir, in a temporary directory of this test's
    monkeypatch.setattr(th.tempfile, "gettempdir", lambda: str(tmp_path))
    made = th.runs_dir()
    assert made is not None and made.stat().st_mode & 0o777 == 0o700
    made.chmod(0o777)          # group- or world-writable: another user could plant or remove files
    assert th.runs_dir() is None
    assert th.RunningAudits(None).count() == 1


def test_the_executor_runs_its_units_on_the_runs_threads_and_leaves_the_folder_on_close(tmp_path):
    ex = LocalExecutor(ExecutionConfig(threads=1))
    assert ex.map([Unit("a", torch.get_num_threads), Unit("b", torch.get_num_threads)]) == [1, 1]
    assert len(list(tmp_path.glob("*.lock"))) == 1
    ex.close()
    assert not list(tmp_path.glob("*.lock"))
    LocalExecutor().close()    # made outside a run (no settings): torch is left alone
    assert torch.get_num_threads() == 1


def test_every_run_starts_its_threads_where_the_executor_is_made():
    from audit.config.load import demo_config
    from audit.engine.execution import make_executor
    ex = make_executor(dataclasses.replace(demo_config(), execution=ExecutionConfig(threads=1)), None)
    try:
        assert torch.get_num_threads() == 1
    finally:
        ex.close()


def test_audit_run_gives_the_caller_its_thread_count_back(monkeypatch):
    import audit
    from audit.api import outputs
    from audit.engine.execution import make_executor
    seen = []

    def run_to(target, cfg, *args, **kwargs):
        ex = make_executor(cfg, None)   # what the pipeline does when it starts
        seen.append(torch.get_num_threads())
        ex.close()
        raise KeyboardInterrupt("stop after the threads were set")

    monkeypatch.setattr(outputs, "run_to", run_to)
    torch.set_num_threads(2)
    with pytest.raises(KeyboardInterrupt):
        audit.run(config={"execution": {"threads": 1}})
    assert seen == [1] and torch.get_num_threads() == 2


@pytest.mark.parametrize(("load", "warned"), [(3.5, True), (2.0, False), (None, False)])
def test_a_machine_busier_than_the_cpus_is_warned_about_with_the_advice(monkeypatch, caplog, load, warned):
    affinity(monkeypatch, 2)
    if load is None:
        def no_load():
            raise OSError("no load average here")
        monkeypatch.setattr(os, "getloadavg", no_load)
    else:
        monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    with caplog.at_level(logging.WARNING, logger=th.__name__):
        th.RunThreads(0, None)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(said) is warned
    if warned:
        assert "load (3.5," in said[0] and "2 CPU(s)" in said[0]
        assert "`[execution] threads = 1`" in said[0] and "OMP_NUM_THREADS=1" in said[0] and "Performance" in said[0]


@pytest.mark.parametrize(("num_cpus", "threads"), [(1.0, 1), (0.5, 1), (2.9, 2), (4.0, 4), (0.01, 1)])
def test_a_ray_task_runs_on_its_num_cpus_rounded_down_never_fewer_than_one(num_cpus, threads):
    assert task_threads(num_cpus) == threads

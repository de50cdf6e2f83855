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


def test_a_top_level_stage_chooses_again_with_one_scan_and_the_record_states_every_count_used(monkeypatch, tmp_path):
    from audit.engine.record import Recorder, profile_table
    affinity(monkeypatch, 2)
    rec = Recorder()
    ex = LocalExecutor(ExecutionConfig(), rec)
    scans = []
    counted = th.RunningAudits.count
    monkeypatch.setattr(th.RunningAudits, "count", lambda self: scans.append(1) or counted(self))
    with rec.stage("check a"):
        assert torch.get_num_threads() == 2
    other = th.RunningAudits(tmp_path, pid=OTHER)   # a second audit starts between two stages
    with rec.stage("check b"):                      # no unit ran: the stage itself gives the core back
        assert torch.get_num_threads() == 1
        with rec.stage("inner"):                    # a nested stage scans nothing
            pass
    assert len(scans) == 2
    other.close()
    ex.close()
    with rec.stage("render"):                       # after the executor closed: left as it was
        assert torch.get_num_threads() == 1
    record = rec.record(end=rec.start + 1.0)
    assert record.threads == 2 and record.threads_used == (2, 1)
    assert "threads 2 then 1" in profile_table(record)


def test_a_run_on_one_count_states_it_and_a_failing_choice_never_stops_a_stage():
    from audit.engine.record import Recorder, profile_table
    rec = Recorder()
    ex = LocalExecutor(ExecutionConfig(threads=1), rec)
    assert ex.map([Unit("a", torch.get_num_threads)]) == [1]

    def broken():
        raise OSError("the folder went away")
    rec.on_top_stage = broken
    with rec.stage("check c"):
        pass
    ex.close()
    record = rec.record(end=rec.start + 1.0)
    assert record.threads_used == (1,) and record.threads == 1 and "1 threads" in profile_table(record)
    assert [s.name for s in record.stages] == ["a", "check c"]


def test_count_removes_only_unlocked_files_of_its_own_pattern(tmp_path):
    ours = th.RunningAudits(tmp_path)
    foreign = ["notes.lock", "12-deadbeef.lock.bak", "12-DEADBEEF.lock", "x12-deadbeef.lock", "12-deadbee.lock"]
    for name in foreign:
        (tmp_path / name).write_text("")
    stale = tmp_path / f"{OTHER + 2}-0123abcd.lock"
    stale.write_text("")
    assert ours.count() == 1
    assert not stale.exists() and all((tmp_path / n).exists() for n in foreign)
    ours.close()


def test_a_folder_swapped_for_a_link_redirects_no_removal(tmp_path):
    runs, victim = tmp_path / "runs", tmp_path / "victim"
    runs.mkdir(mode=0o700)
    victim.mkdir(mode=0o700)
    (victim / f"{OTHER + 3}-0badf00d.lock").write_text("")   # unlocked: a count in that folder would remove it
    ours = th.RunningAudits(runs)
    runs.rename(tmp_path / "runs.old")
    runs.symlink_to(victim)                         # the path now leads elsewhere; the descriptor does not
    assert ours.count() == 1 and (victim / f"{OTHER + 3}-0badf00d.lock").exists()
    ours.close()
    assert not list((tmp_path / "runs.old").iterdir())   # its own file removed where it was made
    linked = th.RunningAudits(runs)                 # a folder that is a link is not opened at all
    assert linked.name == "" and linked.count() == 1 and len(list(victim.iterdir())) == 1


def test_a_forked_child_leaves_the_parents_file_and_del_never_raises(monkeypatch, tmp_path):
    ours = th.RunningAudits(tmp_path)
    mine = tmp_path / ours.name
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)   # the same object, closed in a forked child
    ours.close()
    assert mine.exists() and ours.name == ""
    monkeypatch.undo()
    again = th.RunningAudits(tmp_path)
    held = tmp_path / again.name
    monkeypatch.setattr(th, "contextlib", None)     # interpreter exit: module globals already cleared
    again.__del__()
    th.RunningAudits.__new__(th.RunningAudits).__del__()   # never initialised
    monkeypatch.undo()
    assert held.exists()
    again.close()                                   # the process that made it removes it
    assert not held.exists()

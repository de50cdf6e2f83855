"""--out is never a way to lose files: only a new, empty or advaudit-written directory is replaced, the swap never
leaves a moment without an output, leftovers of killed runs are cleaned, and nothing is written before the
directory is known to be writable."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audit.api.outputs import render
from audit.cli import main
from audit.core.errors import UsageError
from audit.evidence import outdir
from audit.evidence.output import write_outputs
from tests.helpers import previous_output, snapshot

FORMATS = ("html", "json", "md")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write(result, out):
    return write_outputs(result, out, render(result, FORMATS))


def test_lost_files_a_users_project_folder_is_never_replaced(demo_result, tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "advaudit.toml").write_text("seed = 0\n")
    (project / "model.safetensors").write_bytes(b"weights")
    before = snapshot(project)
    with pytest.raises(UsageError, match="not an advaudit output"):
        write(demo_result, project)
    assert main(["demo", "--out", str(project)]) == 2  # before any work: the demo does not even start
    assert "not an advaudit output" in capsys.readouterr().err
    assert snapshot(project) == before


def test_lost_files_a_file_added_to_an_old_output_is_never_deleted(demo_result, tmp_path):
    out = tmp_path / "out"
    write(demo_result, out)
    (out / "my-notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="my-notes.txt, which advaudit did not write"):
        write(demo_result, out)
    assert (out / "my-notes.txt").read_text() == "mine"


def test_an_advaudit_output_or_an_empty_directory_is_replaced(demo_result, tmp_path):
    old = tmp_path / "old"
    previous_output(old)
    write(demo_result, old)
    assert (old / "results.json").is_file() and (old / "report.html").read_text() != "previous good report"
    empty = tmp_path / "empty"
    empty.mkdir()
    write(demo_result, empty)
    assert (empty / "report.html").is_file()


def test_lost_files_the_swap_is_one_exchange_and_a_kill_after_it_leaves_the_new_output(demo_result, tmp_path,
                                                                                      monkeypatch):
    out = tmp_path / "out"
    before = previous_output(out)
    calls = []
    real = outdir._exchange

    def exchange_then_die(a, b):
        assert real(a, b)
        calls.append(snapshot(b))
        raise KeyboardInterrupt  # killed right after the exchange, before the old output is removed
    monkeypatch.setattr(outdir, "_exchange", exchange_then_die)
    with pytest.raises(KeyboardInterrupt):
        write(demo_result, out)
    assert calls and "results.json" in calls[0]          # the new output was in place at once
    assert "results.json" in snapshot(out)
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert len(leftovers) <= 1  # the old output under a hidden name (or already removed)
    monkeypatch.setattr(outdir, "_exchange", real)
    write(demo_result, out)                              # the next run cleans it
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    assert before["report.html"] not in snapshot(out).values()


def test_lost_files_a_kill_before_the_swap_keeps_the_old_output_and_the_next_run_cleans_up(demo_result, tmp_path,
                                                                                         monkeypatch):
    out = tmp_path / "out"
    before = previous_output(out)
    monkeypatch.setattr("audit.evidence.output.publish", lambda tmp, o: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write(demo_result, out)
    assert snapshot(out) == before
    # a killed process leaves its partial directory; simulate a kill -9 (no finally) with a dead writer's pid
    ghost = tmp_path / ".out.zz9plural"
    ghost.mkdir()
    (ghost / ".advaudit-partial").write_text(marker(dead_pid()))
    (ghost / "report.html").write_text("half")
    busy = tmp_path / ".out.alivepid"
    busy.mkdir()
    (busy / ".advaudit-partial").write_text(marker(os.getpid()))  # a run still writing: left alone
    remote = tmp_path / ".out.otherhost"
    remote.mkdir()
    (remote / ".advaudit-partial").write_text(marker(dead_pid(), host="another-host"))  # NFS: never taken
    mine = tmp_path / ".out.notours"
    mine.mkdir()
    (mine / "keep.txt").write_text("a user's hidden folder with a similar name")
    backup = tmp_path / ".out.bak"  # a user's copy of an old output, with a note added: not all listed
    previous_output(backup)
    (backup / "my_notes.txt").write_text("mine")
    old_style = tmp_path / ".out.oldmarker"
    old_style.mkdir()
    (old_style / ".advaudit-partial").write_text(str(dead_pid()))  # not advaudit's marker format: left alone
    monkeypatch.undo()
    write(demo_result, out)
    assert not ghost.exists() and busy.exists() and (mine / "keep.txt").read_text().startswith("a user")
    assert remote.exists() and (backup / "my_notes.txt").is_file() and old_style.exists()


def marker(pid: int, host: str | None = None) -> str:
    import json
    import socket

    from audit.evidence.outdir import _boot_id
    return json.dumps({"generator": "advaudit", "pid": pid, "host": host or socket.gethostname(), "boot": _boot_id()})


def test_an_output_name_with_glob_characters_cleans_only_its_own_leftovers(demo_result, tmp_path):
    other = tmp_path / ".resA.keep"
    previous_output(other)
    write(demo_result, tmp_path / "res*")
    assert other.exists() and (tmp_path / "res*" / "results.json").is_file()


def test_a_fifo_or_a_deep_manifest_in_out_is_refused_not_read(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "manifest.json")
    (out / "SHA256SUMS").write_text("")
    with pytest.raises(UsageError):
        outdir.check_output_dir(out)
    os.unlink(out / "manifest.json")
    (out / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(UsageError):
        outdir.check_output_dir(out)


def test_lost_files_an_undeletable_leftover_never_breaks_a_run(demo_result, tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = tmp_path / ".out.old"  # what advaudit 0.1 left when its swap was interrupted
    previous_output(old)
    monkeypatch.setattr(outdir.shutil, "rmtree", lambda *a, **k: None)  # nothing can be deleted
    write(demo_result, out)
    assert (out / "results.json").is_file()


def test_writability_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("audit.methods.jobs.train", lambda *a, **k: pytest.fail("trained"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "sub")]) == 2
    assert main(["demo", "--out", "/proc/advaudit-out"]) == 2
    err = capsys.readouterr().err
    assert err.count("advaudit: error:") == 2 and "Traceback" not in err
    assert not (tmp_path / "file" / "sub").exists()


def test_symbolic_link_as_out_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError, match="symbolic link"):
        outdir.check_output_dir(tmp_path / "link")

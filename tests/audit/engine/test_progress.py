"""Progress in every setting (audit/core/progress.py): lines with elapsed time and ETA off a terminal, a heartbeat
at most every 30 s, nothing under quiet, sub-stages under verbose, a notebook without ipywidgets on plain lines
and without tqdm's warning; and the demo's own lines."""
from __future__ import annotations

import io
import re
import sys
import types
import warnings

import pytest
import torch

from audit.core import progress
from audit.engine.record import Recorder

LINE = re.compile(r"^advaudit: \[\s*(?P<t>[\d.]+) s\] (?P<what>.*?)(?:  \(eta (?P<eta>[\d.]+) (?P<u>s|min|h)\))?$")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.SETTINGS, "clock", c)
    yield c
    progress.configure()


def configured(**kw) -> io.StringIO:
    out = kw.pop("stream", None) or io.StringIO()
    progress.configure(stream=out, **kw)
    return out


def parsed(out: io.StringIO) -> list[re.Match]:
    lines = out.getvalue().splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m]


def planned_run(work=None, priced=lambda: 0.0) -> progress.RunProgress:
    run = progress.RunProgress(start=0.0)
    run.plan(work if work is not None else {"a": 10.0, "b": 10.0, "": 2.0}, priced)
    return run


def test_off_a_terminal_each_stage_has_a_start_and_an_end_line_with_elapsed_time_and_eta(clock):
    out = configured()
    run = planned_run()
    for name, seconds in (("a", 10.0), ("b", 30.0)):
        run.begin(name, 0)
        clock.now += seconds
        run.end(name, 0, seconds)
    lines = parsed(out)
    assert [m["what"] for m in lines] == ["planned the work of 2 stages", "start a", "done  a in 10.0 s", "start b",
                                          "done  b in 30.0 s"]
    assert [float(m["t"]) for m in lines] == [0.0, 0.0, 10.0, 10.0, 40.0]
    # after "a" (10 of 22 units in 10 s: the reference pace) 12 s are left; after "b" the 2 fixed units at the
    # run's own, slower pace: half its pace since the plan (42 s / 22 units), half the last 30 s's (10 units)
    assert lines[2]["eta"] == "12" and lines[4]["eta"] == f"{2 * (0.5 * 42 / 22 + 0.5 * 30 / 10):.0f}"
    assert all(m["eta"] for m in lines)


def test_the_open_stage_counts_its_passes_toward_the_eta_up_to_its_planned_share(clock):
    configured()
    passes = [0.0]
    run = planned_run({"a": 10.0, "": 0.0}, lambda: passes[0])
    run.begin("a", 0)
    passes[0] = 4.0
    assert run.done() == 4.0
    passes[0] = 50.0
    assert run.done() == progress.OPEN_SHARE * 10.0
    clock.now = 10.0
    run.end("a", 0, 10.0)
    assert run.done() == 10.0 and run.remaining(clock.now) == 0.0


def test_the_heartbeat_comes_from_the_inner_loops_at_most_every_30_seconds(clock):
    out = configured()
    run = planned_run()
    run.begin("a", 0)
    run.begin("fold 1/5", 1)
    for _ in range(100):
        clock.now += 1.0
        progress.tick()   # what every counted pass and every bar step does
    beats = [m for m in parsed(out) if m["what"].startswith("...")]
    assert [float(m["t"]) for m in beats] == [30.0, 60.0, 90.0]
    assert beats[0]["what"] == "...   a, now fold 1/5: 30 s in" and beats[0]["eta"]
    run.end("fold 1/5", 1, 100.0)
    clock.now += 1.0
    progress.tick()                      # a line was written 11 s ago (the end of "a"'s fold is not shown)
    assert len([m for m in parsed(out) if m["what"].startswith("...")]) == 3


def test_quiet_prints_nothing_and_draws_no_bar(clock):
    out = configured(quiet=True)
    run = planned_run()
    run.begin("a", 0)
    clock.now = 100.0
    progress.tick()
    run.end("a", 0, 100.0)
    run.finish()
    assert out.getvalue() == ""
    assert isinstance(progress.bar(range(3), desc="x"), progress.Steps)
    terminal = configured(quiet=True, stream=Terminal())
    assert isinstance(progress.bar(range(3)), progress.Steps) and terminal.getvalue() == ""


def test_verbose_adds_the_nested_stages_and_names_are_escaped(clock):
    for verbose, expected in ((False, ["start a\x1b", "done  a\x1b in 1.0 s"]),
                              (True, ["start a\x1b", "start   sub", "done    sub in 1.0 s", "done  a\x1b in 1.0 s"])):
        out = configured(verbose=verbose)
        run = planned_run()
        run.begin("a\x1b", 0)
        run.begin("sub", 1)
        run.end("sub", 1, 1.0)
        run.end("a\x1b", 0, 1.0)
        assert [m["what"] for m in parsed(out)][1:] == [e.replace("\x1b", "\\x1b") for e in expected]
        assert "\x1b" not in out.getvalue()


def test_a_terminal_gets_bars_and_the_stage_lines(clock):
    out = configured(stream=Terminal())
    assert progress.display() == "terminal"
    from tqdm import tqdm
    assert isinstance(progress.bar(range(2), desc="attack baseline"), tqdm)
    run = planned_run()
    run.begin("a", 0)
    assert "start a" in out.getvalue()


def test_lines_before_the_plan_are_held_and_dropped_when_pre_flight_fails(clock):
    out = configured()
    run = progress.RunProgress(start=0.0)
    run.begin("prepare", 0)
    run.end("prepare", 0, 0.1, ok=False)
    assert out.getvalue() == ""        # the usage error is the one line such a run prints
    run = progress.RunProgress(start=0.0)
    run.begin("prepare", 0)
    run.end("prepare", 0, 0.1)
    assert out.getvalue() == ""
    run.plan(None, lambda: 0.0)        # no plan could be made: the lines, without an ETA
    assert [m["what"] for m in parsed(out)] == ["start prepare", "done  prepare in 0.1 s"]


def fake_kernel(monkeypatch):
    """The modules an IPython kernel has loaded, as tqdm.autonotebook tests for them; no ipywidgets."""
    shell = type("ZMQInteractiveShell", (), {"config": {"IPKernelApp": {}}})()
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    for name in ("tqdm.autonotebook", "tqdm.auto", "tqdm.notebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_a_notebook_without_ipywidgets_gets_plain_lines_and_no_warning(clock, monkeypatch):
    fake_kernel(monkeypatch)
    monkeypatch.setattr(progress, "widgets_installed", lambda: False)
    out = configured()
    assert progress.display() == "lines"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        progress.silence_widget_warning()   # what importing audit.core.progress does in a kernel
        import tqdm.auto  # noqa: F401 - ART and cleanlab import it: its warning must not show
        run = planned_run()
        run.begin("a", 0)
        assert isinstance(progress.bar(range(2)), progress.Steps)
    assert not [w for w in caught if progress.NO_WIDGETS in str(w.message)], [str(w.message) for w in caught]
    assert "start a" in out.getvalue()
    monkeypatch.delitem(sys.modules, "tqdm.autonotebook")
    monkeypatch.delitem(sys.modules, "tqdm.auto")
    with warnings.catch_warnings(record=True) as unsilenced:   # the warning the filter stops does exist
        warnings.simplefilter("always")
        import tqdm.auto  # noqa: F401, F811
    assert [w for w in unsilenced if progress.NO_WIDGETS in str(w.message)]


def test_a_notebook_whose_widget_cannot_be_drawn_falls_back_to_lines(clock, monkeypatch):
    fake_kernel(monkeypatch)
    monkeypatch.setattr(progress, "widgets_installed", lambda: True)   # found, but tqdm.notebook cannot draw it here
    out = configured()
    assert progress.display() == "widget"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = planned_run()
        run.begin("a", 0)
    assert "start a" in out.getvalue() and not [w for w in caught if progress.NO_WIDGETS in str(w.message)]


def test_the_recorder_reports_its_stages_and_its_counted_passes_drive_the_heartbeat(clock):
    out = configured()
    rec = Recorder(start=0.0)
    model = torch.nn.Linear(2, 2)
    rec.counter.attach(model)
    rec.plan({"train x": 1.0, "": 0.0})
    with rec.stage("train x"):
        for _ in range(40):
            clock.now += 1.0
            model(torch.zeros(4, 2))
    rec.counter.detach()
    rec.record()
    what = [m["what"] for m in parsed(out)]
    assert what[1] == "start train x" and what[2].startswith("...   train x: 30 s in")
    assert what[3] == "done  train x in " + what[3].split(" in ")[1] and what[-1] == "all stages done"


def test_the_demo_prints_a_line_per_stage_with_elapsed_time_and_an_eta(demo_run):
    out = demo_run[1]
    lines = (out.parent / "stderr.log").read_text(encoding="utf-8").splitlines()
    ours = [m for line in lines if (m := LINE.match(line))]
    said = [m["what"] for m in ours]
    top = [s["name"] for s in demo_run[2]["run_record"]["stages"] if not s["parent"]]
    assert all(any(w.startswith(f"done  {name} in ") for w in said) for name in top), (top, said)
    after_plan = ours[[m["what"].startswith("planned the work") for m in ours].index(True):]
    assert all(m["eta"] for m in after_plan) and len(after_plan) >= len(top)
    times = [float(m["t"]) for m in ours]
    assert times == sorted(times) and times[-1] > 0


@pytest.mark.parametrize("broken", ["closed", "none"])
def test_a_stream_that_cannot_be_written_turns_progress_off_not_the_run(clock, monkeypatch, broken):
    if broken == "closed":
        out = io.StringIO()
        out.close()
        progress.configure(stream=out)
    else:  # `advaudit run 2>&-`: no sys.stderr at all
        progress.configure()
        monkeypatch.setattr(sys, "stderr", None)
    run = planned_run()
    run.begin("a", 0)
    clock.now += 40.0
    run.tick()
    run.end("a", 0, 40.0)
    run.finish()
    assert run.mode() == "quiet"

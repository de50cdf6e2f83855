"""Progress of a run in every setting. Pure Python: no torch, and tqdm only when a bar or widget is drawn.

``display()``: a terminal (a TTY) gets tqdm's bars for the inner loops and a line per top-level stage start and
end; elsewhere (CI, ``make``, a redirected stderr) the same lines and, in a long stage, a heartbeat line at most
every ``HEARTBEAT_S`` s driven by the inner loops (each counted pass and bar step calls :func:`tick`); a notebook
gets a tqdm.notebook widget if ipywidgets is installed, the lines otherwise, never tqdm's "IProgress not found".
``configure``: ``verbose`` adds the nested stages, ``quiet`` shows nothing; unconfigured (``audit.run``): normal,
on sys.stderr. A line: ``advaudit: [  12.3 s] start check robustness:baseline  (eta 41 s)`` (names: ``terminal``).

ETA: the plan (audit/engine/dryrun.py ``run_plan``: the dry run's pass formulas at fixed reference prices, no
calibration) is the work; a stage's is done when it ends and, while open, in proportion to its passes (up to
``OPEN_SHARE``); the rest is priced at half the pace since the plan (from 1 s per unit weighted ``PRIOR_UNITS``)
and half the recent pace. On seven recorded demo runs: 0.74x-1.81x of the truth at the halfway point.
"""
from __future__ import annotations

import importlib.util
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.core.text import terminal

PREFIX = "advaudit: "
HEARTBEAT_S = 30.0      # a long stage's heartbeat line, at most this often (and only that long after any line)
WIDGET_S = 0.5          # the notebook widget redraws at most this often
PRIOR_UNITS = 2.0       # the weight, in units of work, of the reference pace (one second per unit)
OPEN_SHARE = 0.95       # an open stage counts at most this share of its planned work as done
RECENT_SHARE = 0.5      # the weight of the recent pace in the ETA (the rest: the pace since the plan)
RECENT_S, RECENT_PART = 30.0, 0.3   # "recent": the last 30 s or the last 30% of the run, whichever is longer
SAMPLE_S = 5.0          # how often the inner loops record (time, work done) for the recent pace
NO_WIDGETS = "IProgress not found"  # tqdm's warning in a notebook without ipywidgets
QUIET, NORMAL, VERBOSE = 0, 1, 2


@dataclass
class Settings:
    level: int = NORMAL
    stream: Any = None                          # None: sys.stderr, looked up when a line is written
    clock: Callable[[], float] = time.perf_counter


SETTINGS = Settings()
_ACTIVE: list[RunProgress] = []  # the run whose top-level stage opened last: where tick() goes


def configure(*, quiet: bool = False, verbose: bool = False, stream: Any = None) -> None:
    """The process's progress level (``quiet`` wins over ``verbose``) and stream (None: sys.stderr)."""
    SETTINGS.level = QUIET if quiet else VERBOSE if verbose else NORMAL
    SETTINGS.stream = stream


def stream() -> Any:  # looked up at each line: a test's or notebook's replaced sys.stderr is honoured
    return SETTINGS.stream if SETTINGS.stream is not None else sys.stderr


def in_notebook() -> bool:
    """An IPython kernel (Jupyter, VS Code, Colab) runs this process: the test tqdm.autonotebook makes."""
    return "ipykernel.zmqshell" in sys.modules or "IPython.utils._process_emscripten" in sys.modules


def silence_widget_warning() -> None:
    """tqdm.auto (ART's, cleanlab's) warns in a kernel without ipywidgets: noise where the lines show instead."""
    warnings.filterwarnings("ignore", message=NO_WIDGETS)


def widgets_installed() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def display() -> str:
    """How progress shows now: "quiet", "widget" (a notebook with ipywidgets), "terminal" or "lines"."""
    if SETTINGS.level == QUIET or stream() is None:  # no stderr at all (2>&-, pythonw): nothing to show
        return "quiet"
    try:
        if in_notebook():
            return "widget" if widgets_installed() else "lines"
        return "terminal" if stream().isatty() else "lines"
    except (AttributeError, ImportError, ValueError):  # a stream without isatty or closed; a broken spec
        return "lines"


def duration(seconds: float) -> str:
    """``41 s``, ``2.5 min``, ``1.2 h``: a stable, short form for lines and the widget."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 6000 else f"{seconds / 3600:.1f} h"


class Steps:
    """The inner loop's bar where no bar is drawn: its steps only drive the run's heartbeat (or widget)."""

    def __init__(self, iterable: Iterable):
        self._iterable = iterable

    def __iter__(self) -> Iterator:
        for item in self._iterable:
            yield item
            tick()

    def set_postfix(self, *_args, **_kw) -> None:  # tqdm's, drawing nothing
        return None


def bar(iterable: Iterable, *, desc: str = "", unit: str = "it", leave: bool = False):
    """A progress bar over ``iterable`` (tqdm's signature in part): tqdm's on a terminal, ``Steps`` elsewhere."""
    if display() != "terminal":
        return Steps(iterable)
    from tqdm import tqdm
    return tqdm(iterable, desc=terminal(desc), unit=unit, leave=leave, file=stream())


def tick() -> None:
    """One step of an inner loop (a model pass, a bar step): the active run's heartbeat, if one is due."""
    if _ACTIVE:
        _ACTIVE[-1].tick()


@dataclass
class Plan:
    work: dict[str, float]           # top-level stage name -> planned work not yet done (reference seconds)
    total: float                     # every stage's, plus the run's fixed work (under "")
    priced: Callable[[], float]      # what the passes counted so far are worth, in the same units
    credited: float = 0.0


@dataclass
class RunProgress:
    """One run's lines (or widget): ``begin``/``end`` of its stages, ``tick`` from its inner loops.

    Until the run's plan is set (pre-flight passed) its lines are held back: a run that stops in pre-flight (bad
    input: a one-line usage error) prints only that error; a pre-flight longer than ``HEARTBEAT_S`` shows them."""

    start: float = field(default_factory=lambda: SETTINGS.clock())
    _plan: Plan | None = None
    _open: list = field(default_factory=list)   # (name, depth, started, priced work at start)
    _last: float | None = None                  # when the last line was written (None: the start)
    _held: list[str] | None = field(default_factory=list)   # lines not written yet (None: none held any more)
    _planned_at: float = 0.0
    _samples: list = field(default_factory=list)  # (time, work done), every SAMPLE_S at most: the recent pace
    _mode: str = ""
    _widget: Any = None
    _finished: bool = False

    def mode(self) -> str:
        self._mode = self._mode or display()
        return self._mode

    def plan(self, work: Mapping[str, float] | None, priced: Callable[[], float]) -> None:
        """The run's planned work per top-level stage name ("": work of no stage: libraries, reports); None: no
        plan could be made (lines without an ETA). Pre-flight has passed: the held lines are written."""
        if work is not None:
            self._plan = Plan({k: v for k, v in work.items() if k}, sum(work.values()), priced)
            self._planned_at = SETTINGS.clock()
            self._samples = [(self._planned_at, 0.0)]
        self._release()
        if self._plan is not None:
            self._line(f"planned the work of {len(self._plan.work)} stages", SETTINGS.clock())

    def done(self) -> float:
        """The planned work done: every ended stage's, and the open top-level stage's passes up to its share."""
        p, top = self._plan, self._open[0] if self._open else None
        if p is None:
            return 0.0
        part = min(OPEN_SHARE * p.work[top[0]], max(p.priced() - top[3], 0.0)) if top and top[0] in p.work else 0.0
        return p.credited + part

    def remaining(self, now: float) -> float | None:
        """Seconds until the run ends: the work left at the run's pace so far (None before there is a plan)."""
        if self._plan is None:
            return None
        done = self.done()
        pace = (max(now - self._planned_at, 0.0) + PRIOR_UNITS) / (done + PRIOR_UNITS)
        recent = self._recent_pace(now, done)
        if recent is not None:
            pace = (1 - RECENT_SHARE) * pace + RECENT_SHARE * recent
        return max(self._plan.total - done, 0.0) * pace

    def _recent_pace(self, now: float, done: float) -> float | None:
        """Seconds per unit of work over the recent window (None: too little work done in it to tell)."""
        old = [s for s in self._samples if s[0] <= now - self._window(now)]
        if not old or done - old[-1][1] < PRIOR_UNITS:
            return None
        return (now - old[-1][0]) / (done - old[-1][1])

    def _window(self, now: float) -> float:
        return max(RECENT_S, RECENT_PART * (now - self._planned_at))

    def _sample(self, now: float) -> None:
        if self._plan is None or (self._samples and now - self._samples[-1][0] < SAMPLE_S):
            return
        self._samples.append((now, self.done()))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window(now):
            self._samples.pop(0)   # the newest sample older than the window is the one kept

    def begin(self, name: str, depth: int) -> None:
        now = SETTINGS.clock()
        self._open.append((name, depth, now, self._plan.priced() if self._plan else 0.0))
        if depth == 0:
            _ACTIVE[:] = [self]
        self._stage_line("start", name, depth, now)

    def end(self, name: str, depth: int, seconds: float, ok: bool = True, opened: bool = True) -> None:
        """A stage ended after ``seconds`` (``opened`` False: one measured elsewhere, a worker's, never begun)."""
        now = SETTINGS.clock()
        if opened and self._open:
            self._open.pop()
        if depth == 0 and self._plan is not None and name in self._plan.work:
            self._plan.credited += self._plan.work.pop(name)
            self._sample(now)
        if not ok and self._held is not None:
            self._held.clear()  # pre-flight failed: its error says it all
            return
        self._stage_line("done " if ok else "failed", name, depth, now, f" in {seconds:.1f} s")

    def tick(self) -> None:
        mode = self.mode()
        if mode == "quiet":
            return
        now = SETTINGS.clock()
        self._sample(now)
        if mode == "widget":
            self._redraw(now)
        elif mode == "lines" and self._open and now - (self._last or self.start) >= HEARTBEAT_S:
            top, inner = self._open[0], self._open[-1]
            where = terminal(top[0]) + (f", now {terminal(inner[0])}" if inner is not top else "")
            self._release()
            self._line(f"...   {where}: {now - top[2]:.0f} s in", now)

    def finish(self) -> None:
        """Every stage has ended (the run record is being made): the last line (once), the widget full."""
        if self._finished:
            return
        self._finished = True
        self._line("all stages done", SETTINGS.clock())
        if self._widget is not None:
            self._widget.n = self._widget.total
            self._widget.close()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def _stage_line(self, what: str, name: str, depth: int, now: float, tail: str = "") -> None:
        if depth == 0 or SETTINGS.level >= VERBOSE:
            self._line(f"{what} {'  ' * depth}{terminal(name)}{tail}", now)

    def _line(self, text: str, now: float) -> None:
        if self.mode() == "widget":
            self._redraw(now, force=True)   # a widget that cannot be drawn turns the mode to "lines"
        if self.mode() not in ("lines", "terminal"):
            return
        left = self.remaining(now)
        self._last = now
        line = f"{PREFIX}[{now - self.start:7.1f} s] {text}" + (f"  (eta {duration(left)})" if left is not None
                                                               else "")
        if self._held is not None:
            self._held.append(line)
        else:
            self._write(line)

    def _release(self) -> None:
        held, self._held = self._held, None
        for line in held or ():
            self._write(line)

    def _write(self, line: str) -> None:  # a stream that cannot take it (closed, broken pipe): progress off
        out, above_bar = stream(), self.mode() == "terminal" and "tqdm" in sys.modules
        try:
            out.write(line + "\n") if not above_bar else sys.modules["tqdm"].tqdm.write(line, file=out)
            out.flush()
        except (OSError, ValueError, AttributeError):
            self._mode = "quiet"

    def _redraw(self, now: float, force: bool = False) -> None:
        """The notebook widget: the share of the planned work done, the open stage and the ETA."""
        if not force and self._last is not None and now - self._last < WIDGET_S:
            return
        self._last = now
        try:
            if self._widget is None:
                from tqdm import notebook
                if notebook.IProgress is None:  # ipywidgets found but not importable: no half-made widget
                    raise ImportError(NO_WIDGETS)
                self._widget = notebook.tqdm(total=100, desc="advaudit", leave=True,
                                             bar_format="{l_bar}{bar}| {postfix}")
            p, left = self._plan, self.remaining(now)
            self._widget.n = min(99, int(100 * self.done() / p.total)) if p is not None and p.total > 0 else 0
            self._widget.set_description(terminal(self._open[0][0])[:48] if self._open else "advaudit",
                                         refresh=False)
            self._widget.set_postfix_str(f"eta {duration(left)}" if left is not None else "", refresh=False)
            self._widget.refresh()
        except Exception:  # noqa: BLE001 - no widget (ipywidgets broken, no frontend): the plain lines instead
            self._widget, self._mode = None, "lines"


if in_notebook():
    silence_widget_warning()

"""The run record: every stage's wall time, model passes and peak memory, so a user sees where the time went.

Passes are counted by hooks on every model the run wraps (forward rows; backward rows when gradients flow
through the model, for an attack's input gradient as for a training step), so no attack or trainer has to report
them. Peak host memory is read from the kernel (VmHWM, reset per stage through /proc/self/clear_refs where Linux
allows it), peak device memory from torch's allocator. The same stages and passes drive the progress lines
(audit/core/progress.py): each stage's start and end, a heartbeat from the pass hooks, and the ETA from the run's
plan (``Recorder.plan``) and the passes done.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from attacks import training
from audit.core import progress
from audit.core.result import RunRecord, StageRecord

log = logging.getLogger(__name__)
SMALL_SHARE = 0.01  # the table folds nested stages under 1% of the wall time into one line
warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
training.EPOCH_BAR = progress.bar  # every training's epoch bar shows as the run's progress does (none under -q)
# what a pass is worth in the run plan's units (audit/engine/dryrun.py REFERENCE): an input-gradient or training
# row, a forward-only row
PASS_WORTH = (2.0e-4, 3.0e-5)


@dataclass
class PassCounter:
    forward: int = 0
    backward: int = 0
    handles: list = field(default_factory=list)

    def attach(self, model: torch.nn.Module) -> None:
        """Count ``model``'s forward and backward rows (ScriptModules take no hooks: their passes go uncounted)."""
        try:
            self.handles.append(model.register_forward_hook(self._on_forward))
            self.handles.append(model.register_full_backward_hook(self._on_backward))
        except RuntimeError as e:
            log.info("passes of %s are not counted: %s", type(model).__name__, e)

    def _on_forward(self, _m, inputs, _out):
        if inputs and isinstance(inputs[0], torch.Tensor):
            self.forward += inputs[0].shape[0]
        progress.tick()  # every pass of every loop drives the run's heartbeat

    def _on_backward(self, _m, _gin, gout):
        if gout and isinstance(gout[0], torch.Tensor):
            self.backward += gout[0].shape[0]

    @contextlib.contextmanager
    def suspended(self):
        """Its hooks off while inside (a model is pickled for another process without them), then back on."""
        models = [h.hooks_dict_ref() for h in self.handles]
        saved = [(d, h.id, d.pop(h.id)) for d, h in zip(models, self.handles, strict=False)
                 if d is not None and h.id in d]
        try:
            yield
        finally:
            for d, key, fn in saved:
                d[key] = fn

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _reset_host_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _host_peak_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Recorder:
    """Times stages (``with recorder.stage(name):``), nested ones with their parent named."""

    def __init__(self, start: float | None = None, device: torch.device | None = None, executor: str = "local"):
        self.start = start if start is not None else time.perf_counter()
        self.device = device
        self.executor = executor
        self.counter = PassCounter()
        self.stages: list[StageRecord | None] = []  # None: a stage still open
        self._open: list[str] = []
        self._peak_host = 0.0
        self._peak_device = 0.0
        self.progress = progress.RunProgress(self.start)
        self.threads_used: list[int] = []   # torch threads the run's executor set, each once, in order
        self.on_top_stage: Callable[[], None] | None = None   # as a top-level stage starts: threads chosen again

    def note_threads(self, n: int) -> None:
        """A thread count the run's work runs on (the record's ``threads_used``)."""
        if n not in self.threads_used:
            self.threads_used.append(n)

    def _top_stage_starts(self) -> None:
        if self.on_top_stage is None:
            return
        try:
            self.on_top_stage()
        except Exception as e:  # noqa: BLE001 - choosing threads again is a nicety, never a reason to stop the run
            log.debug("threads not chosen again: %s: %s", type(e).__name__, e)

    def plan(self, work: dict[str, float] | None) -> None:
        """The planned work of each top-level stage (audit/engine/dryrun.py ``run_plan``; None: none could be
        made): the ETA of the progress lines, which start now (pre-flight passed)."""
        self.progress.plan(work, self._passes_worth)

    def _passes_worth(self) -> float:
        gradient, forward_only = self.counter.backward, self.counter.forward - self.counter.backward
        return gradient * PASS_WORTH[0] + forward_only * PASS_WORTH[1]

    @contextlib.contextmanager
    def stage(self, name: str, node: str = ""):
        parent = self._open[-1] if self._open else ""
        depth = len(self._open)
        self._open.append(name)
        self.progress.begin(name, depth)
        cuda = self.device is not None and self.device.type == "cuda"
        if not parent:
            self._top_stage_starts()
            _reset_host_peak()
            if cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
        fwd, bwd = self.counter.forward, self.counter.backward
        slot = len(self.stages)
        self.stages.append(None)  # stages are listed in the order they start: a parent before its children
        t = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = time.perf_counter() - t
            self._open.pop()
            self.progress.end(name, depth, seconds, ok)
            host = _host_peak_mb()
            dev = torch.cuda.max_memory_allocated(self.device) / 2**20 if cuda else None
            self._peak_host = max(self._peak_host, host)
            self._peak_device = max(self._peak_device, dev or 0.0)
            dbwd = self.counter.backward - bwd
            self.stages[slot] = (StageRecord(name=name, seconds=round(seconds, 4), example_passes=dbwd,
                                           forward_passes=self.counter.forward - fwd - dbwd,
                                           peak_host_mb=round(host, 1), peak_device_mb=None if dev is None
                                           else round(dev, 1), parent=parent, node=node))

    def add(self, record: StageRecord) -> None:
        """A stage measured elsewhere (a worker of a distributed executor), nested in the stage open here."""
        if not record.parent and self._open:
            record = dataclasses.replace(record, parent=self._open[-1])
        self.stages.append(record)
        self.progress.end(record.name, max(len(self._open), 1) if record.parent else len(self._open),
                          record.seconds, opened=False)

    def record(self, end: float | None = None) -> RunRecord:
        wall = (end if end is not None else time.perf_counter()) - self.start
        done = [s for s in self.stages if s is not None]  # a stage still open (the caller's) is not in it
        self.progress.finish()
        top = sum(s.seconds for s in done if not s.parent)
        used = tuple(self.threads_used) or (torch.get_num_threads(),)   # no executor's count: torch's now
        return RunRecord(stages=tuple(done), wall_seconds=round(wall, 3),
                         accounted=round(min(top / wall, 1.0) if wall > 0 else 1.0, 4),
                         device=str(self.device) if self.device is not None else "", executor=self.executor,
                         threads=max(used), threads_used=used, peak_host_mb=round(self._peak_host, 1),
                         peak_device_mb=round(self._peak_device, 1) if self._peak_device else None)


def _threads(record: RunRecord) -> str:
    used = record.threads_used or (record.threads,)
    return f"{used[0]} threads" if len(used) == 1 else f"threads {' then '.join(map(str, used))}"


def profile_table(record: RunRecord) -> str:
    """The record as a plain-text table (``advaudit run --profile``), slowest stages first within their parent."""
    lines = [f"{'stage':48s} {'seconds':>9s} {'share':>6s} {'fwd+bwd':>12s} {'fwd':>12s} {'host MB':>8s}"]
    by_parent: dict[str, list[StageRecord]] = {}
    for s in record.stages:
        by_parent.setdefault(s.parent, []).append(s)

    def emit(parent: str, depth: int):
        shown = sorted(by_parent.get(parent, []), key=lambda s: -s.seconds)
        small = [s for s in shown if parent and s.seconds < SMALL_SHARE * record.wall_seconds]
        for s in shown:
            if s in small:
                continue
            lines.append(f"{'  ' * depth + s.name:48.48s} {s.seconds:9.2f} {s.seconds / record.wall_seconds:6.1%} "
                         f"{s.example_passes:12,d} {s.forward_passes:12,d} "
                         f"{(s.peak_host_mb or 0):8.0f}")
            emit(s.name, depth + 1)
        if small:
            t = sum(s.seconds for s in small)
            lines.append(f"{'  ' * depth + f'({len(small)} more, each under {SMALL_SHARE:.0%})':48.48s} {t:9.2f} "
                         f"{t / record.wall_seconds:6.1%}")
    emit("", 0)
    lines.append(f"{'wall':48s} {record.wall_seconds:9.2f}   (stages account for {record.accounted:.1%}; device "
                 f"{record.device}, executor {record.executor}, {_threads(record)}, peak host "
                 f"{record.peak_host_mb or 0:.0f} MB)")
    return "\n".join(lines)

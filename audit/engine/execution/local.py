"""The in-process executor: units run here, in order, each as a nested stage of the run record (today's
behaviour, and the default), on the run's threads (audit/engine/execution/threads.py: set when the executor
starts; automatic threads are chosen again before each unit and as each top-level stage of the run starts, for the
audits running on the machine then; every count set goes into the run record's ``threads_used``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.core.work import Unit
from audit.engine.execution.threads import start_threads
from audit.methods.jobs import COUNTERS


class LocalExecutor:
    name = "local"

    def __init__(self, settings=None, recorder=None, base_dir: str = ""):
        self.recorder = recorder
        self.threads = start_threads(settings)  # None without settings: a context made outside a run
        if self.threads is not None and recorder is not None:
            recorder.note_threads(self.threads.threads)
            recorder.on_top_stage = self.choose_threads

    workers = 1

    def share(self, obj: Any) -> Any:
        return obj

    def choose_threads(self) -> None:
        """The run's threads chosen again (automatic: for the audits running now; one scan of their folder)."""
        if self.threads is None:
            return
        n = self.threads.apply()
        if self.recorder is not None:
            self.recorder.note_threads(n)

    def map(self, units: Sequence[Unit]) -> list[Any]:
        out = []
        for u in units:
            self.choose_threads()
            if self.recorder is None:
                out.append(u.fn(*u.args))
                continue
            COUNTERS.append(self.recorder.counter)  # models built in the unit have their passes counted
            try:
                with self.recorder.stage(u.name):
                    out.append(u.fn(*u.args))
            finally:
                COUNTERS.pop()
        return out

    def close(self) -> None:
        if self.threads is not None:
            self.threads.close()
        if self.recorder is not None and self.recorder.on_top_stage == self.choose_threads:
            self.recorder.on_top_stage = None   # the stages after the run (rendering) keep the last count

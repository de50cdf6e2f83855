"""What every executor runs around a unit: its wall time and the node (host and process) it ran on."""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timed:
    value: Any
    seconds: float
    node: str


def task_threads(num_cpus: float) -> int:
    """The torch threads of a unit that runs beside others on ``num_cpus`` CPUs (a Ray task): that many, rounded
    down, at least 1; never the node's core count (every worker at all cores would spin against the others)."""
    return max(int(num_cpus), 1)


def run_timed(fn: Callable[..., Any], args: tuple, threads: int = 0) -> Timed:
    """Run one unit where it landed, timed; ``threads`` > 0 limits torch's intra-op threads to that many."""
    import torch
    if threads > 0:
        torch.set_num_threads(threads)
    t = time.perf_counter()
    value = fn(*args)
    return Timed(value, time.perf_counter() - t, f"{socket.gethostname()}:{os.getpid()}")

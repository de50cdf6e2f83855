"""The executor contract (no torch here): a unit of work is a module-level function with its arguments, so any
process can run it; an executor ``map``s units to their values, in order, and ``share``s objects many units read.
The executors themselves live in audit/engine/execution."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Unit:
    name: str                      # the stage it is recorded as, e.g. "fold 2/5" or "attack shard 3/4"
    fn: Callable[..., Any]         # a module-level function
    args: tuple = ()


class Executor(Protocol):
    name: str

    @property
    def workers(self) -> int: ...

    def share(self, obj: Any) -> Any: ...

    def map(self, units: Sequence[Unit]) -> list[Any]: ...

    def close(self) -> None: ...

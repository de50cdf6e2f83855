"""Where the audit's independent units run ([execution]; audit/engine/execution)."""
from __future__ import annotations

from dataclasses import dataclass

from audit.config.sections import finite
from audit.core.errors import UsageError

EXECUTOR_NAMES = ("local", "ray")
MAX_THREADS = 4096   # torch threads a run may ask for (a typo's 10**9 would try to start that many)


@dataclass(frozen=True)
class ExecutionConfig:
    """executor: "local" (in this process, the default) or "ray". address (ray): "" starts a local cluster,
    "auto" joins the cluster of this machine, "ray://host:10001" a remote head. num_cpus, num_gpus: what each
    task asks for (torch uses num_cpus threads in it). cluster_cpus: CPUs of a local cluster (0: all).
    shards: pieces the attack grid's test set is cut into (0: one per worker the cluster can run at once; the
    result does not depend on it). max_retries: how often a task whose worker died is run again. threads: torch's
    intra-op threads in this process (0: automatic, the CPUs of the process's affinity shared among the audits
    running on the machine; audit/engine/execution/threads.py, the README's Performance section)."""

    executor: str = "local"
    address: str = ""
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    cluster_cpus: int = 0
    shards: int = 0
    max_retries: int = 3
    threads: int = 0

    def validate(self, path: str) -> None:
        if self.executor not in EXECUTOR_NAMES:
            raise UsageError(f"{path}.executor: {self.executor!r} is not valid; valid: "
                             f"{', '.join(map(repr, EXECUTOR_NAMES))}")
        finite(path, num_cpus=self.num_cpus, num_gpus=self.num_gpus)
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise UsageError(f"{path}: num_cpus must be > 0 and num_gpus >= 0")
        if self.cluster_cpus < 0 or self.shards < 0 or self.max_retries < 0:
            raise UsageError(f"{path}: cluster_cpus, shards and max_retries must be >= 0")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) \
                or not 0 <= self.threads <= MAX_THREADS:
            raise UsageError(f"{path}.threads: {self.threads!r} is not valid; give 0 (automatic: the CPUs this "
                             f"process may use) or a number of threads from 1 to {MAX_THREADS}")
        if self.address and not (self.address == "auto" or self.address.startswith("ray://")
                                 or ":" in self.address):
            raise UsageError(f"{path}.address: {self.address!r} is not a Ray address; give 'auto', "
                             "'ray://host:10001', 'host:6379' or leave it empty for a local cluster")

"""The Ray executor: units run as Ray tasks, with Ray's retries when a worker dies.

``address``: "" starts a local cluster (a laptop, CI), "auto" joins the cluster this machine belongs to (after
``ray start --head``), "ray://host:10001" connects a client to a remote head (KubeRay). Each task asks for
``num_cpus`` CPUs (torch uses that many threads in it, rounded down, at least 1: ``task_threads``) and ``num_gpus``
GPUs. Objects that many units read go into the object store once (``share``). A cluster that cannot be reached is a
usage error, raised before any work.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from audit.core.errors import UsageError
from audit.core.net import connect_within
from audit.core.result import StageRecord
from audit.core.work import Unit
from audit.engine.execution.base import Timed, run_timed, task_threads
from audit.engine.execution.threads import start_threads

log = logging.getLogger(__name__)


def _task(fn, threads: int, *args) -> Timed:
    """The body of every Ray task: object references among ``args`` arrive resolved (top-level arguments)."""
    return run_timed(fn, args, threads)


CONNECT_TIMEOUT = 3.0
# HTTP/2 client preface and an empty SETTINGS frame: a Ray head (GCS or Ray Client server, both gRPC) answers with
# a SETTINGS frame of its own; anything else listening on the port does not, and ray.init would wait for minutes.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def unreachable(address: str) -> str:
    """Why a "host:port" or "ray://host:port" address is not a Ray cluster ('' if a gRPC server answers there
    within ``CONNECT_TIMEOUT`` s). Checked before ``ray.init``, which otherwise retries for minutes."""
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return ""  # "auto" and friends: Ray resolves them and fails fast itself
    if not port.isascii() or not 0 < int(port) < 65536:
        return f"port {port!r} is not a TCP port (1-65535)"
    try:
        with connect_within(host.strip("[]"), int(port), CONNECT_TIMEOUT) as s:
            s.sendall(H2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        return f"something listens there but gives no gRPC answer within {CONNECT_TIMEOUT:g} s (not a Ray head)"
    except OSError as e:
        return e.strerror or str(e) or type(e).__name__
    if len(head) < 9 or head[3] != 0x04:
        return "something listens there but it is not a gRPC server (not a Ray head)"
    return ""


@contextlib.contextmanager
def quiet_stderr():
    """Ray's C++ core logs to file descriptor 2 while it connects: keep that off the user's terminal (the one-line
    error says what failed); what it wrote is logged at debug level."""
    import tempfile
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(20_000).decode("utf-8", "replace").strip()
            if text:
                log.debug("ray.init wrote: %s", text)


class RayExecutor:
    name = "ray"

    def __init__(self, settings, recorder=None, base_dir: str = ""):
        try:
            import ray
        except ImportError:
            raise UsageError("execution.executor: 'ray' needs Ray; install it with: pip install 'advaudit[ray]'") \
                from None
        self.ray, self.settings, self.recorder = ray, settings, recorder
        self._started = False
        why = unreachable(settings.address) if settings.address else ""
        if why:   # checked even when this process already holds a Ray: the config names this cluster
            raise UsageError(f"execution.address: cannot reach the Ray cluster at {settings.address!r}: {why}")
        if not ray.is_initialized():
            kw: dict[str, Any] = dict(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                                      logging_level=logging.WARNING, configure_logging=False)
            if settings.address:
                kw["address"] = settings.address
            else:  # a local cluster: its workers import what this process imports (the config's modules too)
                if settings.cluster_cpus:
                    kw["num_cpus"] = settings.cluster_cpus
                paths = [p for p in (base_dir, *sys.path) if p]
                kw["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}
            try:
                with quiet_stderr():
                    ray.init(**kw)
            except Exception as e:  # Ray raises ConnectionError, RuntimeError or ValueError depending on the address
                with contextlib.suppress(Exception):
                    ray.shutdown()   # whatever a failed start left (a half-started local cluster) is not reused
                where = settings.address or "a new local cluster"
                raise UsageError(f"execution.address: cannot reach the Ray cluster at {where!r}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            self._started = True
        self._remote = ray.remote(_task).options(num_cpus=settings.num_cpus, num_gpus=settings.num_gpus,
                                                 max_retries=settings.max_retries)
        self._shared: dict[int, tuple[Any, Any]] = {}
        self._threads = start_threads(settings)  # this process's own work (the checks between the units)

    @property
    def workers(self) -> int:
        """How many tasks the cluster runs at once at the requested resources."""
        res = self.ray.cluster_resources()
        n = int(res.get("CPU", 1) // max(self.settings.num_cpus, 1e-9))
        if self.settings.num_gpus:
            n = min(n, int(res.get("GPU", 0) // self.settings.num_gpus))
        return max(n, 1)

    def share(self, obj: Any) -> Any:
        key = id(obj)
        if key not in self._shared:  # the object is kept alive with its reference, so its id is not reused
            hooks = self.recorder.counter.suspended() if self.recorder is not None else contextlib.nullcontext()
            with hooks:  # the run record's pass counter stays here
                self._shared[key] = (obj, self.ray.put(obj))
        return self._shared[key][1]

    def map(self, units: Sequence[Unit]) -> list[Any]:
        threads = task_threads(self.settings.num_cpus)
        refs = [self._remote.remote(u.fn, threads, *u.args) for u in units]
        done = self.ray.get(refs)
        if self.recorder is not None:
            for u, r in zip(units, done, strict=False):
                self.recorder.add(StageRecord(name=u.name, seconds=round(r.seconds, 4), example_passes=0,
                                              forward_passes=0, peak_host_mb=None, peak_device_mb=None, parent="",
                                              node=r.node))
        return [r.value for r in done]

    def close(self) -> None:
        self._shared.clear()
        if self._threads is not None:
            self._threads.close()
        if self._started:
            self.ray.shutdown()

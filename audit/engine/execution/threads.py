"""The run's torch intra-op threads (``[execution] threads``) and the warning of a machine busier than its cores.

``threads = N`` (N > 0) runs torch on N threads. ``threads = 0`` (the default) chooses: the CPUs this process may
run on (its affinity, as ``taskset`` or a container's cpuset set it; torch's own default counts the machine's
cores), shared among the processes running an audit on this machine at the time, never more than torch had when
the run started (``OMP_NUM_THREADS``, or a caller's ``torch.set_num_threads``, still lowers it), at least 1. Torch
processes whose threads outnumber the cores spin against each other (the demo took 28 s alone on 2 cores and 15-25
minutes beside three other torch processes), so every audit holds a locked file in a per-user folder of the
temporary directory while it runs, and the local executor chooses again before each unit and as each top-level
stage of the run starts: an audit started alone gives a core back when a second one starts beside it, and takes it
again when that one ends. ``audit.run`` restores the caller's count after the run (``kept_threads``).
Floating-point sums depend on the thread count: set ``threads`` for bit-identical reruns (the run record's
``threads_used`` lists every count the executor set)."""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)
MAX_LISTED = 256   # entries of the folder of running audits read per count (only this user writes there)
LOCK_NAME = re.compile(r"^\d+-[0-9a-f]{8}\.lock$")   # a running audit's file: its pid and a random tag
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity where the platform has one, else the machine's count."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):   # macOS and Windows have no sched_getaffinity
        return max(os.cpu_count() or 1, 1)


def auto_threads(cpus: int, cap: int, audits: int) -> int:
    """The automatic choice: ``cpus`` shared among ``audits`` running audits, at most ``cap``, at least 1."""
    return max(1, min(cap, cpus // max(audits, 1)))


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def busy_warning(load: float | None, cpus: int) -> str:
    """What to say when the machine is busier than the CPUs this process may use ('' when it is not)."""
    if load is None or load <= cpus:
        return ""
    return (f"the machine's load ({load:.1f}, 1-minute average) is above the {cpus} CPU(s) this process may use: "
            "torch processes side by side slow each other down; when running several audits at once, give each "
            "`[execution] threads = 1` (or OMP_NUM_THREADS=1; in general cores / audits threads), see the README's "
            "Performance section")


def _fcntl() -> ModuleType | None:
    try:
        import fcntl
    except ImportError:   # Windows: no flock, no folder of running audits
        return None
    return fcntl


def runs_dir() -> Path | None:
    """This user's folder of running audits (mode 0700), made if needed; None where it cannot be trusted (another
    user's, a link, group- or world-writable) or made, or where the platform has no flock."""
    if _fcntl() is None or not hasattr(os, "getuid"):
        return None
    path = Path(tempfile.gettempdir()) / f"advaudit-runs-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


class RunningAudits:
    """This audit's entry among the audits running on the machine: a file it holds locked while it runs (the lock
    dies with its process, so a killed audit's file is never counted: the next count removes it). Audits are
    counted by process: torch's threads are one setting per process, and an executor a process left open (a
    notebook's, a test fixture's) must not halve its next audit's threads. Every file operation goes through a
    descriptor of the folder (opened without following a link, checked private after opening), and only names of
    the folder's own pattern (``LOCK_NAME``) are read or removed."""

    def __init__(self, where: Path | None, pid: int | None = None):
        self.where, self.pid, self.name = where, os.getpid() if pid is None else pid, ""
        self._fd = self._dir = -1
        self._creator = os.getpid()   # a forked child closes its copies, never removes the parent's file
        fcntl = _fcntl()
        if where is None or fcntl is None:
            return
        self._dir = _open_dir(where)
        if self._dir < 0:
            return
        name = f"{self.pid}-{secrets.token_hex(4)}.lock"
        try:
            fd = os.open(f".{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=self._dir)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # it appears locked: no count takes it for a finished audit's
            os.replace(f".{name}", name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(f".{name}", dir_fd=self._dir)
            return
        self.name, self._fd = name, fd

    def count(self) -> int:
        """How many processes run an audit now, this one included (1 without the folder)."""
        if not self.name:
            return 1
        try:
            with os.scandir(self._dir) as entries:
                names = [e.name for e in itertools.islice(entries, MAX_LISTED)]
        except OSError:
            return 1
        mine = str(self.pid)
        others = {n.split("-", 1)[0] for n in names
                  if LOCK_NAME.match(n) and n.split("-", 1)[0] != mine and _alive(self._dir, n)}
        return 1 + len(others)

    def close(self) -> None:
        """Remove this audit's file (only in the process that made it) and close the descriptors."""
        if self._fd >= 0 and self._creator == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(self.name, dir_fd=self._dir)
        for fd in (self._fd, self._dir):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._dir = -1
        self.name = ""

    def __del__(self):   # an executor dropped without close: its lock goes with it
        # not contextlib.suppress: at interpreter exit the modules may be gone (the kernel frees the lock)
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass


def _open_dir(where: Path) -> int:
    """A descriptor of the folder (-1: none): opened without following a link, and still this user's and private
    once open (a folder swapped after ``runs_dir`` looked at it is not used)."""
    if not ({os.open, os.unlink, os.rename, os.stat} <= os.supports_dir_fd and os.scandir in os.supports_fd):
        return -1
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    except OSError:
        return -1
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        os.close(fd)
        return -1
    return fd


def _alive(folder: int, name: str) -> bool:
    """Whether the audit whose file this is still runs (its lock is held); a finished one's file is removed."""
    fcntl = _fcntl()
    assert fcntl is not None   # RunningAudits counts only where it could lock its own file
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        with contextlib.suppress(OSError):   # removed only while it is still the file just found unlocked
            here, held = os.stat(name, dir_fd=folder, follow_symlinks=False), os.fstat(fd)
            if stat.S_ISREG(here.st_mode) and (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                os.unlink(name, dir_fd=folder)
        return False
    finally:
        os.close(fd)


class RunThreads:
    """One run's threads, from its executor's start (``apply`` once, with the busy-machine warning) to its close.
    ``setting``: ``[execution] threads`` (0: automatic)."""

    def __init__(self, setting: int = 0, where: Path | None = None):
        import torch
        self.setting, self.cap, self.cpus = setting, max(torch.get_num_threads(), 1), available_cpus()
        self.audits = RunningAudits(where)  # an audit at fixed threads takes its cores too: the others count it
        warning = busy_warning(load_average(), self.cpus)
        if warning:
            log.warning("%s", warning)
        self.threads = self.apply()

    def apply(self) -> int:
        """Set torch to the threads chosen now (automatic: for the audits running now); return them."""
        import torch
        audits = self.audits.count() if self.setting <= 0 else 0
        n = self.setting if self.setting > 0 else auto_threads(self.cpus, self.cap, audits)
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
            log.info("torch intra-op threads: %d (%s)", n, "[execution] threads" if self.setting else
                     f"{self.cpus} CPU(s) of this process, {audits} audit(s) running, at most {self.cap}")
        self.threads = n
        return n

    def close(self) -> None:
        self.audits.close()


def start_threads(settings) -> RunThreads | None:
    """The run's threads, applied (None without settings: an executor made outside a run leaves torch alone)."""
    if settings is None:
        return None
    return RunThreads(getattr(settings, "threads", 0), runs_dir())


@contextlib.contextmanager
def kept_threads() -> Iterator[None]:
    """Torch's thread count as the caller had it, restored on leaving (a library leaves no global changed)."""
    import torch
    before = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

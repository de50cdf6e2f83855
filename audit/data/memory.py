"""Process memory tuning for streamed (larger-than-RAM) data sets."""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Serve allocations above ``threshold`` bytes with mmap so that freed batches go back to the OS.

    glibc raises its mmap threshold after the first large free; from then on every batch-sized tensor comes from
    the heap and fragments it, and streaming a memory-mapped data set grows the resident set with the data size
    (1.17 GB above a tiny run for 1 GB of data, bench/memmap_memory.py; 13 MB with this setting). It costs some
    speed on small in-memory data, so it is applied only when the data is streamed. Returns whether it applied.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    log.debug("mmap threshold set to %d bytes: %s", threshold, ok)
    return ok

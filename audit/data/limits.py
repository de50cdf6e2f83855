"""How much memory a data file may ask for, checked from what it declares before anything is decompressed.

An archive states its members' sizes (a zip header, an ``.npy`` header's shape and dtype, a Parquet footer); a
48 MB ``.npz`` can declare 50 GB. Every in-memory source compares the declared bytes with ``memory_limit``:
``data.max_memory_gb`` when set, else 80% of the memory available now. Larger data sets belong in the
memory-mapped ``npy`` source, which reads one batch at a time.
"""
from __future__ import annotations

import os

import numpy as np

from audit.core.errors import UsageError

AVAILABLE_SHARE = 0.8


def available_bytes() -> int:
    """Memory available to this process now (Linux MemAvailable; else physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        return 1 << 34


def memory_limit(cfg) -> int:
    gb = float(getattr(cfg, "max_memory_gb", 0.0) or 0.0)
    return int(gb * (1 << 30)) if gb > 0 else int(AVAILABLE_SHARE * available_bytes())


def check_declared(cfg, declared: int, what: str, key: str = "data.path") -> None:
    """Exit 2 if ``declared`` bytes exceed the limit, before they are read."""
    limit = memory_limit(cfg)
    if declared > limit:
        how = "data.max_memory_gb" if getattr(cfg, "max_memory_gb", 0) else "80% of the available memory"
        raise UsageError(f"{key}: {what} declares {declared / 1e9:.3g} GB, over the limit of {limit / 1e9:.3g} GB "
                         f"({how}); nothing was decompressed. Use the memory-mapped 'npy' source for data this "
                         f"large, or raise data.max_memory_gb")


def npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``fh``, reading its header only (the stream is left at
    the first data byte)."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(fh)


def array_bytes(shape, dtype: np.dtype) -> int:
    """Bytes an array of ``shape`` and ``dtype`` takes (exact: no int64 overflow on a crafted shape)."""
    return int(np.prod(shape, dtype=object)) * dtype.itemsize

"""Reading a small file the user (or an attacker) names: a regular file only (never a FIFO that blocks, a device
that never ends or a directory), at most ``limit`` bytes, read without blocking."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from audit.core.errors import UsageError

MIB = 1 << 20


def read_bounded(path: Path, limit: int, what: str, follow: bool = True) -> bytes:
    """The bytes of ``path``; UsageError naming ``what`` if it is not a regular file of at most ``limit`` bytes.
    ``follow=False`` also refuses a symbolic link. FileNotFoundError and IsADirectoryError pass through."""
    if "\x00" in str(path):
        raise UsageError(f"{what}: the path contains a NUL byte")
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError)):
            raise
        raise UsageError(f"{what}: cannot open {path}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(str(path))
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{what}: {path} is not a regular file")
        if info.st_size > limit:
            raise UsageError(f"{what}: {path} is {info.st_size:,} bytes; at most {limit:,}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(limit + 1 - total, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UsageError(f"{what}: {path} grew past {limit:,} bytes while being read")
        return b"".join(chunks)
    finally:
        os.close(fd)

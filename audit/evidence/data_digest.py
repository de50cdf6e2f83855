"""The SHA-256 of a data folder as the provenance block records it: of exactly the files its loader reads.

One ``sha256sum`` line per file, in the loader's order, "<sha256>  <path relative to the folder>\\n" over the
name's bytes; a name holding a backslash, a line feed or a carriage return is escaped as sha256sum escapes it (the
line starts with "\\", then "\\\\", "\\n", "\\r"), so no name can fake a second line. Files are opened as the
loader opens them (a linked class folder or image is followed). Over the bound (files or bytes) nothing is hashed:
the record says so, with a warning, and is kept.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from audit.core.hashing import sha256_file

MAX_FILES = 200_000
MAX_BYTES = 16 * 2**30
NPY = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")
NPY_VAL = ("x_val.npy", "y_val.npy")


class TooLarge(Exception):
    """The files are over the bound: ``str()`` says how many and how large."""


def sha256sum_line(digest: str, name: str) -> bytes:
    """sha256sum's line for ``name`` (its bytes as the file system holds them), escaped as sha256sum does."""
    raw = os.fsencode(name)
    if not any(c in raw for c in (b"\\", b"\n", b"\r")):
        return digest.encode() + b"  " + raw + b"\n"
    escaped = raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return b"\\" + digest.encode() + b"  " + escaped + b"\n"


def files_sha256(root: Path, files: list[Path]) -> tuple[str, int]:
    """(SHA-256 of the sha256sum lines of ``files``, in this order, named relative to ``root``; total bytes).
    Raises TooLarge over MAX_FILES or MAX_BYTES (checked from the sizes, before reading anything) and OSError."""
    sizes = [os.stat(f).st_size for f in files]   # follows links, as the loader's open does
    total = sum(sizes)
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise TooLarge(f"too large: {len(files):,} files / {total:,} bytes; the bound is {MAX_FILES:,} files / "
                       f"{MAX_BYTES:,} bytes")
    h = hashlib.sha256()
    for f in files:
        h.update(sha256sum_line(sha256_file(f), os.path.relpath(f, root).replace(os.sep, "/")))
    return h.hexdigest(), total


def loader_files(source: str, path: Path) -> list[Path]:
    """The files the ``source`` loader reads under the folder ``path`` (image folder, or .npy pairs)."""
    if source == "folder":
        from audit.data.sources.folder import image_files
        return image_files(path)
    names = NPY + (NPY_VAL if (path / NPY_VAL[0]).exists() else ())
    return [path / n for n in names if (path / n).exists()]

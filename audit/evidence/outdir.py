"""The output directory's safety: what ``--out`` may replace, cleaning what killed runs left, and a swap that
never leaves a moment without the output.

``--out`` may name a directory that does not exist yet, an empty directory, or a directory advaudit wrote (its
``manifest.json`` and ``SHA256SUMS`` list every file in it). Anything else, a user's project folder above all, is
refused before any work: advaudit never deletes a file it did not write. A new output is assembled in a hidden
sibling ``.<name>.XXXXXXXX`` (with a marker naming the writing process) and exchanged with the old one in one
atomic ``renameat2(RENAME_EXCHANGE)``; where the kernel or file system cannot exchange, two renames are used.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import glob
import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from audit.core.errors import UsageError
from audit.core.files import read_bounded
from audit.evidence.manifest import MANIFEST, PARTIAL, SUMS
from audit.evidence.signing import ENVELOPE

log = logging.getLogger(__name__)
OWN = (SUMS, MANIFEST, ENVELOPE)
RENAME_EXCHANGE = 2
AT_FDCWD = -100


MAX_LIST_BYTES = 16 << 20


def _small_text(path: Path) -> str | None:
    """A regular file's text (no FIFO, device or link; at most 16 MiB), or None."""
    try:
        return read_bounded(path, MAX_LIST_BYTES, str(path.name), follow=False).decode("utf-8")
    except (UsageError, OSError, UnicodeDecodeError):
        return None


def listed_files(out: Path) -> set[str] | None:
    """The files an advaudit output lists (its manifest's and SHA256SUMS's), or None if it is not one."""
    text, sums_text = _small_text(out / MANIFEST), _small_text(out / SUMS)
    if text is None or sums_text is None:
        return None
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError):
        return None
    sums = sums_text.splitlines()
    if not isinstance(manifest, dict) or "manifest_version" not in manifest or not isinstance(
            manifest.get("files"), list):
        return None
    return {line.partition("  ")[2] for line in sums if "  " in line} | set(OWN)


def check_replaceable(out: Path) -> None:
    """``out`` may be (re)written: absent, empty, or an advaudit output holding only files advaudit wrote."""
    if out.is_symlink():
        raise UsageError(f"--out {out} is a symbolic link; give the directory itself")
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    entries = list(out.rglob("*"))
    if not entries:
        return
    listed = listed_files(out)
    if listed is None:
        raise UsageError(f"--out {out} is not empty and not an advaudit output (no manifest.json and SHA256SUMS); "
                         f"advaudit only replaces its own outputs: choose a new or empty directory")
    stray = _unlisted(out, listed)
    if stray:
        raise UsageError(f"--out {out} holds {stray}, which advaudit did not write; move it away or choose "
                         f"another directory (advaudit never deletes a file it did not write)")


def _unlisted(root: Path, listed: set[str]) -> str:
    """The first entry under ``root`` that is neither a folder nor a listed regular file ('' if none)."""
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink() or not (p.is_dir() or (p.is_file() and rel in listed)):
            return rel
    return ""


def _writable_ancestor(path: Path) -> Path:
    p = path
    while not p.exists():
        p = p.parent
    return p


def check_output_dir(out: Path) -> Path:
    """Everything about ``--out`` that can fail, checked before any work; returns its absolute path."""
    out = Path(os.path.abspath(out))
    check_replaceable(out)
    base = _writable_ancestor(out.parent)
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the output directory {out}: {base} is not writable")
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"cannot replace the output directory {out}: it is not writable")
    try:
        if base == out.parent:
            tempfile.TemporaryFile(dir=base).close()
    except OSError as e:
        raise UsageError(f"cannot write the output directory {out}: {e.strerror or e}") from None
    return out


def inside(root: Path, rel: str) -> Path:
    """The path of ``rel`` inside the output directory ``root``: every file advaudit writes goes through here. A
    name that is absolute, climbs out (``..``), holds a backslash, NUL or control character, or passes through a
    symbolic link is refused, so no name in a config or a result can place a file outside ``--out``."""
    parts = rel.split("/")
    if (not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in rel)):
        raise UsageError(f"refusing to write {ascii(rel)}: not a plain relative name inside the output directory")
    root = Path(os.path.abspath(root))
    target = root.joinpath(*parts)
    p = root
    for part in parts:
        p = p / part
        if p.is_symlink():
            raise UsageError(f"refusing to write {ascii(rel)}: {p} is a symbolic link")
    if os.path.commonpath([os.path.realpath(target), os.path.realpath(root)]) != os.path.realpath(root):
        raise UsageError(f"refusing to write {ascii(rel)}: it resolves outside {root}")
    return target


def write_inside(root: Path, rel: str, data: str | bytes) -> Path:
    """Write ``data`` to ``rel`` inside ``root`` (see ``inside``), creating its folders; never follows a link."""
    target = inside(root, rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(out: Path) -> None:
    """Remove the hidden siblings killed runs left: directories advaudit was writing (marker, writer gone) and old
    outputs an interrupted swap left behind (advaudit outputs by their manifest). Failures are only logged."""
    parent = out.parent
    if not parent.is_dir():
        return
    for p in parent.glob(f".{glob.escape(out.name)}.*"):
        if not p.is_dir() or p.is_symlink():
            continue
        marker = p / PARTIAL
        try:
            if marker.exists() or marker.is_symlink():
                ours = _abandoned(marker) and not _unlisted(p, _files_of(p))
            else:
                listed = listed_files(p)
                ours = listed is not None and not _unlisted(p, listed)
        except (OSError, ValueError, RecursionError):
            ours = False
        if ours:
            shutil.rmtree(p, ignore_errors=True)
            if p.exists():
                log.warning("could not remove the leftover %s", p)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read(64).strip()
    except OSError:
        return ""


def _marker() -> str:
    return json.dumps({"generator": "advaudit", "pid": os.getpid(), "host": socket.gethostname(),
                       "boot": _boot_id()})


def _abandoned(marker: Path) -> bool:
    """The marker is advaudit's, written on this machine since its last boot, by a process that is gone (a
    marker from another host or container sharing the folder is never taken as abandoned)."""
    text = _small_text(marker)
    try:
        m = json.loads(text or "")
    except (ValueError, RecursionError):
        return False
    if not isinstance(m, dict) or m.get("generator") != "advaudit" or m.get("host") != socket.gethostname() \
            or m.get("boot") != _boot_id() or not isinstance(m.get("pid"), int) or not 0 < m["pid"] < 2**22:
        return False
    return not _alive(m["pid"])


def _files_of(directory: Path) -> set[str]:
    """What a partial output may hold: its regular files (it was being written; nothing in it is listed yet)."""
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and not p.is_symlink()}


def begin_write(out: Path, failure: str) -> tuple[Path, Path]:
    """(absolute ``out``, a fresh hidden sibling to build its next version in): ``out`` checked replaceable and
    writable, old leftovers cleaned; UsageError "``failure`` OUT: reason" when the sibling cannot be made."""
    out = check_output_dir(out)
    clean_leftovers(out)
    try:
        return out, new_partial(out)
    except OSError as e:
        raise UsageError(f"{failure} {out}: {e.strerror or e}") from None


def new_partial(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    write_inside(tmp, PARTIAL, _marker())
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish(tmp: Path, out: Path) -> None:
    """Put the finished ``tmp`` in place of ``out``; the old output is removed afterwards."""
    (tmp / PARTIAL).unlink(missing_ok=True)
    os.chmod(tmp, 0o755)
    if not out.exists():
        tmp.rename(out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old output
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.rmdir(old)
    out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)

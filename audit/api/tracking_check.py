"""Pre-flight of an MLflow tracking URI: resolved and checked before any work, so a typo or a server that is not
there is exit 2 in a second, not an exit 3 after the audit.

Checked: the scheme is one MLflow stores runs in; a local store (a path, ``file:``, ``sqlite:``) can be created or
written; a server (``http(s):``, a database URI with a host) accepts a TCP connection within ``TIMEOUT`` s.
``databricks`` URIs need credentials this check does not have: only the form is checked. "" is the default store,
``sqlite:///mlflow.db`` in the working directory. A file store (a path, ``file:``) is refused under MLflow 3 unless
``MLFLOW_ALLOW_FILE_STORE`` is set: MLflow 3 keeps it in maintenance mode and refuses it without that variable, so
advaudit no longer sets it behind the user's back (the run would log, and stock MLflow could not read it back).
"""
from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from audit.config.tracking import DEFAULT_STORE
from audit.core.errors import UsageError
from audit.core.net import connect_within, redact
from audit.core.text import terminal

TIMEOUT = 3.0
DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
SCHEMES = ("", "file", "sqlite", "http", "https", "databricks", *DB_PORTS)


def _writable_dir(path: Path, uri: str) -> None:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if p != path and not p.is_dir():
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: {p} is not a directory")
    if path.exists() and not path.is_dir():
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: {path} exists and is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: {p} is not writable")


def _reachable(host: str, port: int, uri: str, http: str = "") -> None:
    """A TCP connection within ``TIMEOUT``; for ``http``/``https`` also an HTTP answer to ``GET /health`` (MLflow
    server's health endpoint; any status counts), so a port that accepts and never answers is refused."""
    try:
        s = connect_within(host, port, TIMEOUT)
        with s:
            if http:
                if http == "https":
                    import ssl
                    ctx = ssl.create_default_context()
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # reachability only
                    s = ctx.wrap_socket(s, server_hostname=host)
                s.sendall(f"GET /health HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii", "replace"))
                if not s.recv(5).startswith(b"HTTP/"):
                    raise OSError("it answers, but not as an HTTP server")
    except TimeoutError:
        raise UsageError(f"tracking.tracking_uri: {terminal(host)}:{port} accepts connections but gives no HTTP "
                         f"answer within {TIMEOUT:g} s ({terminal(redact(uri))!r})") from None
    except OSError as e:
        raise UsageError(f"tracking.tracking_uri: cannot reach {terminal(host)}:{port} for "
                         f"{terminal(redact(uri))!r} within {TIMEOUT:g} s ({e.strerror or e})") from None


def _mlflow_major() -> int:
    from importlib import metadata
    for name in ("mlflow", "mlflow-skinny"):
        try:
            return int(metadata.version(name).split(".")[0])
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return 0


def _file_store_allowed(uri: str) -> None:
    if _mlflow_major() >= 3 and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r} is a file store, which MLflow 3 keeps in "
                         f"maintenance mode and refuses unless MLFLOW_ALLOW_FILE_STORE=true is set; use "
                         f"{DEFAULT_STORE} (the default, tracking_uri = \"\") or set that variable")


def _check_sqlite(uri: str) -> None:
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: give sqlite:///path/to/mlflow.db")
    db = Path(rest[1:]).resolve()  # sqlite:///mlflow.db: relative to the working directory; sqlite:////abs/x.db
    if db.exists() and not db.is_file():
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: {db} is not a file")
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: {db} is not writable")
    _writable_dir(db.parent, uri)


def _database_store_installed(uri: str) -> None:
    """MLflow's database stores need SQLAlchemy and Alembic, which mlflow-skinny does not bring."""
    import importlib.util
    missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r} is a database store, which MLflow "
                         f"writes with {' and '.join(missing)} (not installed): pip install 'advaudit[mlflow]'")


def check_tracking_uri(uri: str) -> None:
    """Raise UsageError naming the problem if runs cannot be logged to ``uri`` ("" = ``DEFAULT_STORE``)."""
    if not isinstance(uri, str):
        raise UsageError(f"tracking.tracking_uri: give a string, not {type(uri).__name__}")
    if len(uri) > 2048 or any(ord(c) < 32 for c in uri):
        raise UsageError(f"tracking.tracking_uri: {terminal(uri[:80])!r} is not a URI (control characters or "
                         f"over 2,048 characters)")
    import importlib.util
    if importlib.util.find_spec("mlflow") is None:  # found, not imported: its import costs seconds
        raise UsageError("tracking.mlflow needs MLflow: pip install 'advaudit[mlflow]'")
    uri = uri or DEFAULT_STORE
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as e:
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r} is not a URI ({e})") from None
    scheme = parsed.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter
        scheme = ""
    if scheme not in SCHEMES and scheme.split("+")[0] not in DB_PORTS:
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: scheme {scheme!r} is not an MLflow store; "
                         f"give a path, file:///..., sqlite:///..., http(s)://host:port or a database URI")
    if not scheme and ":" in uri:
        raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r} is neither a path nor a URI (a ':' "
                         f"without a scheme)")
    if scheme in ("", "file"):
        if parsed.netloc and parsed.netloc != "localhost":
            raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r}: a file URI names a local path "
                             f"(file:///path)")
        _writable_dir(Path(urllib.parse.unquote(parsed.path) if scheme else uri).resolve(), uri)
        _file_store_allowed(uri)
    elif scheme == "sqlite":
        _check_sqlite(uri)
    if scheme == "sqlite" or scheme.split("+")[0] in DB_PORTS:
        _database_store_installed(uri)
    if scheme in ("http", "https") or scheme.split("+")[0] in DB_PORTS:
        try:
            host, port = parsed.hostname, parsed.port
        except ValueError:
            raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r} has an invalid host or port") \
                from None
        if not host:
            raise UsageError(f"tracking.tracking_uri: {terminal(redact(uri))!r} names no host")
        default = {"http": 80, "https": 443}.get(scheme) or DB_PORTS[scheme.split("+")[0]]
        _reachable(host, port or default, uri, scheme if scheme in ("http", "https") else "")

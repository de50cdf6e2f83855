"""Network pre-flight helpers: a TCP connection bounded in time (name resolution included) and URIs made safe to
print."""
from __future__ import annotations

import socket
import urllib.parse


def connect_within(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``host:port`` within ``timeout`` seconds in all, name resolution included (the socket
    timeout does not bound getaddrinfo, which can wait for a resolver for many seconds)."""
    import concurrent.futures
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise OSError(f"resolving {host!r} took over {timeout:g} s") from None
        except UnicodeError:
            raise OSError(f"{host!r} is not a valid host name") from None
    finally:
        pool.shutdown(wait=False)
    last: OSError = OSError(f"no address for {host!r}")
    for family, kind, proto, _name, address in infos:
        s = socket.socket(family, kind, proto)
        s.settimeout(timeout)
        try:
            s.connect(address)
            return s
        except OSError as e:
            s.close()
            last = e
    raise last


def redact(uri: str) -> str:
    """``uri`` without a password (user:secret@host -> user:***@host), for messages."""
    try:
        parts = urllib.parse.urlsplit(uri)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return uri

"""Bounded network checks, so that an offline machine fails in seconds, not minutes."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlparse


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host can be opened within ``timeout``.

    The lookup runs in a daemon thread because ``getaddrinfo`` ignores socket
    timeouts: on some offline machines DNS alone can block for half a minute.
    """
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if parsed.scheme == "file":
        return True
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def socket_timeout(seconds: float):
    """Temporarily give every new socket a timeout, so a stalled download raises."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)

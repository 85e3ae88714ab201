"""Bounded network checks, so that an offline machine fails in seconds, not minutes."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

# Statuses that mean "the file itself is coming": 206 answers our one-byte range, 200 a
# server that ignores ranges. Anything else (404, a proxy's 403, a portal's page) is not the file.
_FILE_STATUSES = (200, 203, 206)


def download_problem(url: str, timeout: float = 3.0) -> str | None:
    """Why ``url`` cannot be downloaded from this machine, or None when it can.

    Asks for the file's first byte (a ranged GET through the same proxies as
    the download) and gives up after ``timeout`` seconds in all, DNS included.
    A TCP connection alone proves little: filtering proxies and captive portals
    accept connections, then never answer or answer with their own page.

    Returns:
        None, or a short reason for people, e.g. ``"timed out after 3 s"``,
        ``"HTTP 404 Not Found"``, ``"redirected to portal.example (a captive
        portal or a proxy's login page?)"``, ``"cannot look up example.org"``.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return None if Path(parsed.path).is_file() else f"no file {parsed.path}"
    timed_out = f"timed out after {timeout:g} s"
    outcome = _within(timeout, lambda: _ask_for_first_byte(url, timeout))
    return timed_out if outcome is _TIMED_OUT or outcome == "timed out" else outcome


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` can be downloaded from here: :func:`download_problem` found nothing."""
    return download_problem(url, timeout) is None


_TIMED_OUT = object()


def _within(timeout: float, function):
    """``function()``'s result, or ``_TIMED_OUT`` when it takes longer than ``timeout`` seconds.

    It runs in a daemon thread because ``getaddrinfo`` ignores socket timeouts:
    on some offline machines DNS alone can block for half a minute. An abandoned
    thread ends by itself when its own socket timeout fires.
    """
    result: list = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else _TIMED_OUT


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects within the host only: one to another host is what captive
    portals and proxy login pages send, not the file (urllib then raises HTTPError 3xx)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlparse(newurl).hostname != urlparse(req.full_url).hostname:
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _ask_for_first_byte(url: str, timeout: float) -> str | None:
    """One ranged GET of byte 0; None if the file answers, else why not (runs in the probe thread)."""
    host = urlparse(url).hostname
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
    opener = urllib.request.build_opener(_SameHostRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return None if response.status in _FILE_STATUSES else f"HTTP {response.status} {response.reason}"
    except urllib.error.HTTPError as error:
        location = error.headers.get("Location") if error.headers else None
        if 300 <= error.code < 400 and location:
            where = urlparse(location).hostname or location
            return f"redirected to {where} (a captive portal or a proxy's login page?)"
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        return _connection_problem(getattr(error, "reason", error), host)
    except Exception as error:  # http.client's protocol errors: whatever answered is not a web server
        return f"{host} gave a broken answer ({type(error).__name__})"


def _connection_problem(reason, host: str | None) -> str:
    """A few words for a failure to connect (``reason`` is an exception or urllib's string)."""
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return f"cannot look up {host}"
    if isinstance(reason, ssl.SSLError):
        return f"the secure connection to {host} failed ({reason}; a proxy that intercepts HTTPS?)"
    detail = getattr(reason, "strerror", None) or str(reason)
    return f"cannot connect to {host}: {detail}"


@contextlib.contextmanager
def socket_timeout(seconds: float):
    """Temporarily give every new socket a timeout, so a stalled download raises."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)

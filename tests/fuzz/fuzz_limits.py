"""Limits the fuzz tests hold every example to: time (a hang becomes a failure) and memory."""

from __future__ import annotations

import contextlib
import resource
import signal


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail, rather than hang, if the block takes longer (a pure-C loop still finishes its current call first)."""

    def _alarm(signum, frame):
        raise TimeoutError(f"one example took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def max_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

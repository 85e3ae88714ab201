"""Where files live on this machine. A bottom module: it imports nothing from ``helpers``."""

from __future__ import annotations

import os
from pathlib import Path


def keras_home() -> Path:
    """The Keras cache folder, read from ``KERAS_HOME`` at each call.

    Keras reads ``KERAS_HOME`` only once, when it is imported; reading it at
    call time lets a notebook (or a test) redirect the cache afterwards.

    Returns:
        ``$KERAS_HOME`` if set (and not empty), else ``~/.keras`` (Keras's
        default), with ``~`` expanded. The folder may not exist yet.
    """
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()

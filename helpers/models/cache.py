"""Where converted model weights are cached between sessions."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GRADCAM_CACHE_DIR"


def cache_dir() -> Path:
    """The directory for cached model weights, created if missing.

    ``GRADCAM_CACHE_DIR`` wins when set (tests point it at a temporary
    folder); otherwise it sits next to Keras' own downloads, in
    ``$KERAS_HOME/helpers`` (``~/.keras/helpers`` by default), so that clearing
    the Keras cache clears ours too.

    Returns:
        An existing directory.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        path = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "helpers"
    path.mkdir(parents=True, exist_ok=True)
    return path

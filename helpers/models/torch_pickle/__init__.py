"""Read a legacy PyTorch ``state_dict`` file with ``pickle`` and NumPy only.

``torch.save`` (before PyTorch 1.6, or with ``_use_new_zipfile_serialization=False``)
writes one file made of, in this order:

1. a pickled magic number (``0x1950a86a20f9469cfc6c``),
2. a pickled protocol version (``1001``),
3. a pickled ``sys_info`` dict (endianness and C type sizes, informational),
4. the main pickle: an ``OrderedDict`` name -> tensor, where every tensor is
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and
   every storage is a *persistent id* ``("storage", torch.FloatStorage, key,
   location, numel, view_metadata)``; a final ``BUILD`` sets the dict's
   ``_metadata`` attribute (module versions, which we drop),
5. a pickled list of storage keys, then for each key, in that order, an
   8-byte little-endian element count followed by the raw little-endian data.

A pickle can run any importable callable, and its ``BUILD`` opcode can rewrite
an object after it was made, so the loader checks each pickle in two passes:

* **Before unpickling**, :func:`.scan._check_opcodes` walks the pickle opcode by
  opcode with ``pickletools``' opcode table and argument readers (what
  ``pickletools.genops`` does: pure Python, runs nothing) and simulates its stack.
  Only the protocol-2 opcodes that torch's legacy writer uses for a dict of
  tensors are allowed (no ``INST``/``OBJ``/``NEWOBJ``/``STACK_GLOBAL``/...);
  globals must be on the allow-list; ``BUILD`` may only give an ``OrderedDict``
  a plain dict; a container cannot change once it is inside another one (so the
  nesting depth the simulation sees is the real one, and is capped); memo
  indices are capped (the C unpickler sizes its memo by the largest index).
* **While unpickling**, ``find_class`` hands out only an ``OrderedDict``
  subclass (whose ``__setstate__`` accepts ``_metadata`` and nothing else), a
  NumPy stand-in for ``_rebuild_tensor_v2`` and immutable marker classes for
  the storage types; everything they build refuses ``BUILD``. Tensor records
  are checked at once (offsets >= 0, strides >= 1 on dimensions longer than 1,
  at most 8 dimensions, a size cap) and checked again against their storage
  before any array is made, so no view can reach outside the file's data.


torch is not needed.

Modules, by concern:
    :mod:`.scan`: pass 1, the opcode walk.
    :mod:`.unpickler`: pass 2, the restricted ``Unpickler`` and the allowed globals.
    :mod:`.records`: storage markers, tensor-record checks, storages and arrays.
    :mod:`.limits`: the caps and the one-line refusal and corruption messages.
    This module: the file format (header, main pickle, storage list) and
    :func:`load_torch_state_dict`. The caps it enforces itself
    (``_MAX_FILE_BYTES``, ``_MAX_ENTRIES``, ``_MAX_OPCODES``) are read from this
    module's namespace at call time, so a test may lower them here; the other
    caps live in :mod:`.limits` only (lowering them here would fail loudly,
    not silently do nothing).

Errors (always one line, never a raw Python exception):
    :class:`~helpers.errors.UnsafePickleError`: the file asks for something a
    plain weights file never contains (a global, an opcode, a persistent id,
    a ``BUILD``, a strange tensor layout or more data than the caps allow).
    :class:`~helpers.errors.ModelUnavailableError`: the file is not in the
    legacy format (for example a zip archive from a newer ``torch.save``), or
    it is truncated or otherwise corrupt.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from ...errors import ModelUnavailableError, UnsafePickleError
from .limits import _MAX_ENTRIES, _MAX_FILE_BYTES, _MAX_OPCODES, _REFUSAL_HINT, _corrupt, _describe, _exc_detail
from .records import _STORAGE_TYPES as _STORAGE_TYPES  # re-exported for the tests
from .records import _check_total, _materialize, _read_storages, _root_refs
from .scan import _check_opcodes
from .unpickler import _RestrictedUnpickler as _RestrictedUnpickler  # re-exported for the tests
from .unpickler import _StateDict

__all__ = ["load_torch_state_dict"]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001


def _load_pickle(raw: bytes, start: int, path, *, allow_storages: bool = False):
    """One pickle from ``raw[start:]``: checked opcode by opcode, then through the restricted unpickler.

    Args:
        raw: the whole file.
        start: where the pickle begins.
        path: file name, for error messages.
        allow_storages: True only for the main tensor dict.

    Returns:
        ``(object, end)``: the unpickled object and the offset just past it.
    """
    end = _check_opcodes(
        raw, start, main=allow_storages, fail_corrupt=lambda detail: _corrupt(path, detail), max_opcodes=_MAX_OPCODES
    )
    try:
        return _RestrictedUnpickler(io.BytesIO(raw[start:end]), allow_storages=allow_storages).load(), end
    except UnsafePickleError:
        raise
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        struct.error,
        RecursionError,
        OverflowError,
    ) as exc:
        raise _corrupt(path, f"unpickling failed: {_exc_detail(exc)}") from exc


def _check_header(raw: bytes, path) -> int:
    """Read and check the magic number, protocol version and sys_info pickles; return where they end."""
    magic, pos = _load_pickle(raw, 0, path)
    if magic != _MAGIC_NUMBER:
        raise ModelUnavailableError(
            f"{os.fspath(path)} is not a legacy PyTorch file (wrong magic number); "
            "only files written by torch.save's legacy format are supported"
        )
    version, pos = _load_pickle(raw, pos, path)
    if version != _PROTOCOL_VERSION:
        raise ModelUnavailableError(
            f"{os.fspath(path)} uses torch protocol version {_describe(version)}, expected {_PROTOCOL_VERSION}"
        )
    sys_info, pos = _load_pickle(raw, pos, path)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelUnavailableError(f"{os.fspath(path)} was not written on a little-endian machine; not supported")
    return pos


def _read_file(path) -> bytes:
    try:
        size = os.stat(path).st_size
        if size > _MAX_FILE_BYTES:
            raise UnsafePickleError(
                f"refused a {size}-byte weights file, more than the {_MAX_FILE_BYTES >> 20} MiB cap"
            )
        with open(path, "rb") as f:
            return f.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read weights file {os.fspath(path)}: {exc}") from exc


def load_torch_state_dict(path) -> collections.OrderedDict[str, np.ndarray]:
    """Load a legacy-format PyTorch ``state_dict`` without torch and without running code.

    Args:
        path: a ``.pth`` file written by ``torch.save(model.state_dict(), path)``
            in the legacy (non-zip) format.

    Returns:
        An ``OrderedDict`` parameter name -> NumPy array, in file order, with
        the file's dtypes (``float32`` stays ``float32``; BatchNorm's
        ``num_batches_tracked`` is ``int64``).

    Raises:
        UnsafePickleError: the file uses an opcode, global or persistent id that a
            weights file never contains (only ``OrderedDict``,
            ``torch._utils._rebuild_tensor_v2`` and ``torch.*Storage`` types are
            allowed), holds something other than tensors, lays a tensor out
            strangely or exceeds a size cap.
        ModelUnavailableError: the file is missing, is a zip archive (newer
            torch format), is not a torch file, or is truncated/corrupt.
    """
    raw = _read_file(path)
    if zipfile.is_zipfile(io.BytesIO(raw)) or raw[:4] == b"PK\x03\x04":
        raise ModelUnavailableError(
            f"{os.fspath(path)} is a zip archive (the newer torch.save format); only the "
            "legacy non-zip format can be read without torch. Re-save it with "
            "torch.save(..., _use_new_zipfile_serialization=False)"
        )
    pos = _check_header(raw, path)
    state, pos = _load_pickle(raw, pos, path, allow_storages=True)
    if not isinstance(state, _StateDict):
        raise UnsafePickleError(f"refused a top-level {type(state).__name__}: {_REFUSAL_HINT}")
    if len(state) > _MAX_ENTRIES:
        raise UnsafePickleError(f"refused {len(state)} entries, more than {_MAX_ENTRIES}: {_REFUSAL_HINT}")
    refs = _root_refs(state, path)
    _check_total(state)
    keys, pos = _load_pickle(raw, pos, path)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _corrupt(path, "the storage-key list is not a list of strings")
    missing = set(refs) - set(keys)
    if missing:
        raise _corrupt(path, f"{len(missing)} storages are used but not stored, e.g. {_describe(min(missing))}")
    storages = _read_storages(memoryview(raw), pos, keys, refs, path)
    return collections.OrderedDict(
        (name, _materialize(name, pending, storages, path)) for name, pending in state.items()
    )

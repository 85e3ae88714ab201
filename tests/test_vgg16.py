"""VGG16: the article's architecture and split, and a quick, clear failure offline."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from helpers import ModelUnavailableError, explain_classes, load_model, split_model, wrap_keras_model
from helpers.models import choose_model, vgg16

ARTICLE_LAYERS = [
    "input_layer",
    "block1_conv1",
    "block1_conv2",
    "block1_pool",
    "block2_conv1",
    "block2_conv2",
    "block2_pool",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
    "block3_pool",
    "block4_conv1",
    "block4_conv2",
    "block4_conv3",
    "block4_pool",
    "block5_conv1",
    "block5_conv2",
    "block5_conv3",
    "block5_pool",
    "flatten",
    "fc1",
    "fc2",
    "predictions",
]


@pytest.fixture(scope="module")
def architecture():
    return vgg16.build_vgg16()


def test_vgg16_has_the_articles_layers(architecture):
    assert [layer.name for layer in architecture.layers][1:] == ARTICLE_LAYERS[1:]
    assert tuple(architecture.get_layer("block5_conv3").output.shape) == (None, 14, 14, 512)
    assert architecture.get_layer("predictions").activation.__name__ == "linear"  # logits
    assert architecture.count_params() == 138_357_544


def test_the_split_reproduces_the_full_model_exactly(architecture):
    last_conv_layer_model, classifier_model = split_model(architecture, "block5_conv3")
    assert [layer.name for layer in classifier_model.layers][1:] == [
        "block5_pool",
        "flatten",
        "fc1",
        "fc2",
        "predictions",
    ]
    assert tuple(last_conv_layer_model.output.shape) == (None, 14, 14, 512)
    x = vgg16.preprocess_vgg16(np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)))
    full = np.asarray(architecture(x))
    split = np.asarray(classifier_model(last_conv_layer_model(x)))
    np.testing.assert_array_equal(full, split)


def test_every_method_runs_on_vgg16(architecture):
    classifier = wrap_keras_model(
        architecture, preprocess=vgg16.preprocess_vgg16, class_names="imagenet", input_is_bgr=True
    )
    assert classifier.last_conv_layer == "block5_conv3"
    photo = np.random.default_rng(1).uniform(0, 255, (300, 400, 3)).astype(np.float32)
    [result] = explain_classes(classifier, photo, top_k=1)
    for method, shape in [
        ("gradcam", (224, 224)),
        ("counterfactual", (224, 224)),
        ("guided_backprop", (224, 224, 3)),
        ("guided_gradcam", (224, 224, 3)),
    ]:
        assert result[method].map.shape == shape
        assert np.isfinite(result[method].map).all()
    assert result["gradcam"].coarse.shape == (14, 14)


def test_caffe_preprocessing_is_bgr_minus_mean():
    pixel = np.array([[[[10.0, 20.0, 30.0]]]])
    np.testing.assert_allclose(
        vgg16.preprocess_vgg16(pixel)[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6
    )


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No cached weights and no network: every connection attempt is refused."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("GRADCAM_MODEL", raising=False)
    monkeypatch.delenv(vgg16.WEIGHTS_ENV, raising=False)

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (simulated)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path


def test_vgg16_offline_fails_fast_and_names_the_alternative(offline):
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="efficientnet_lite0") as error:
        load_model("vgg16")
    assert time.monotonic() - start < 10
    assert "553 MB" in str(error.value) and "not cached" in str(error.value)
    assert not list(offline.rglob("*.h5")), "no partial weights file may be left behind"


def test_vgg16_download_errors_leave_no_partial_file(offline, monkeypatch):
    """The probe succeeds but the transfer dies half-way: the half file is removed."""
    import keras

    monkeypatch.setattr(vgg16, "download_problem", lambda *a, **k: None)

    def half_download(fname, origin, cache_subdir, file_hash):
        path = offline / cache_subdir / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(keras.utils, "get_file", half_download)
    with pytest.raises(ModelUnavailableError, match="connection reset.*efficientnet_lite0"):
        vgg16.download_weights()
    assert not vgg16.cached_weights_path().exists()


def test_auto_picks_the_offline_model_when_vgg16_cannot_be_had(offline):
    name, reason = choose_model()
    assert name == "efficientnet_lite0"
    assert reason == (
        "VGG16's weights are not cached and cannot be downloaded here "
        "(cannot connect to storage.googleapis.com: network is unreachable (simulated))"
    )


@pytest.fixture
def failing_download(offline, monkeypatch):
    """The probe gets an answer, then the download stalls (a proxy dropping big files); VGG16 is never built."""
    import keras

    monkeypatch.setattr(vgg16, "download_problem", lambda *a, **k: None)

    def stalled(*args, **kwargs):
        raise TimeoutError("timed out")

    def no_build(*args, **kwargs):
        raise AssertionError("VGG16 was built although its weights could not be downloaded")

    monkeypatch.setattr(keras.utils, "get_file", stalled)
    monkeypatch.setattr(vgg16, "build_vgg16", no_build)


def test_auto_falls_back_to_the_offline_model_when_the_download_fails(failing_download, capsys):
    assert choose_model() == ("vgg16", "its ImageNet weights can be downloaded")
    classifier = load_model("auto")
    assert classifier.name == "efficientnet_lite0" and classifier.model.name == "efficientnet_lite0"
    stalled = f"it stalled for {vgg16.STALL_TIMEOUT:g} s"
    assert capsys.readouterr().out.splitlines() == [
        "Using VGG16: its ImageNet weights can be downloaded.",
        f"Using EfficientNet-Lite0: VGG16's weights could not be downloaded ({stalled}).",
    ]


def test_auto_falls_back_when_vgg16_fails_to_load(offline, monkeypatch, capsys):
    """Not only the download: any failure to load VGG16 (here: memory) means the offline model."""
    from helpers import models

    def out_of_memory():
        raise MemoryError("Unable to allocate 392. MiB for an array")

    monkeypatch.setattr(vgg16, "weights_are_cached", lambda: True)
    monkeypatch.setattr(models, "_load_vgg16", out_of_memory)
    monkeypatch.setattr(models, "_load_efficientnet_lite0", lambda: "the offline model")
    assert load_model("auto") == "the offline model"
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Using EfficientNet-Lite0: VGG16 could not be loaded (MemoryError: Unable to allocate 392. MiB for an array)."
    )


def test_explicit_vgg16_still_raises_when_the_download_fails(failing_download):
    with pytest.raises(ModelUnavailableError, match="efficientnet_lite0") as error:
        load_model("vgg16")
    assert error.value.reason == f"it stalled for {vgg16.STALL_TIMEOUT:g} s"


def test_gradcam_model_vgg16_is_explicit_too(failing_download, monkeypatch):
    monkeypatch.setenv("GRADCAM_MODEL", "vgg16")
    with pytest.raises(ModelUnavailableError, match="efficientnet_lite0"):
        load_model("auto")


def test_auto_picks_vgg16_when_its_weights_are_cached(offline, monkeypatch):
    monkeypatch.setattr(vgg16, "weights_are_cached", lambda: True)
    assert choose_model() == ("vgg16", "its ImageNet weights are cached")


def test_the_environment_variable_overrides_auto(offline, monkeypatch):
    monkeypatch.setattr(vgg16, "weights_are_cached", lambda: True)
    monkeypatch.setenv("GRADCAM_MODEL", "efficientnet_lite0")
    assert choose_model()[0] == "efficientnet_lite0"
    monkeypatch.setenv("GRADCAM_MODEL", "resnet")
    with pytest.raises(Exception, match="unknown model 'resnet'"):
        choose_model()


def test_load_h5_weights_reads_the_keras_h5_layout(tmp_path):
    """The loader reads Keras's legacy HDF5 layout (the downloaded file's) array by array."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(image)
    model = keras.Model(image, keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(x)))
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    expected = [w.copy() for w in model.get_weights()]
    for variable in model.weights:
        variable.assign(np.zeros(variable.shape))
    vgg16.load_h5_weights(model, path)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_load_model_vgg16_from_a_weights_file_of_the_real_size(tmp_path, monkeypatch):
    """The lean loader (zeros, then slices, largest first) gives exactly the file's weights."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    source = vgg16.build_vgg16()
    path = tmp_path / "vgg16.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    assert abs(path.stat().st_size - vgg16.WEIGHTS_BYTES) < 100_000  # the same bytes as the real file
    monkeypatch.setenv(vgg16.WEIGHTS_ENV, str(path))
    monkeypatch.delenv("GRADCAM_MODEL", raising=False)
    assert choose_model() == ("vgg16", f"its weights file is given by {vgg16.WEIGHTS_ENV}")
    classifier = load_model("vgg16")
    for mine, theirs in zip(classifier.model.weights, source.weights):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    x = vgg16.preprocess_vgg16(np.random.default_rng(2).uniform(0, 255, (1, 224, 224, 3)))
    np.testing.assert_allclose(np.asarray(classifier.model(x)), np.asarray(source(x)), rtol=1e-5, atol=1e-5)


def test_a_missing_local_weights_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(vgg16.WEIGHTS_ENV, str(tmp_path / "missing.h5"))
    with pytest.raises(ModelUnavailableError, match="does not name a file"):
        load_model("vgg16")


def test_random_vgg16_weights_follow_keras_defaults(architecture):
    """Glorot-uniform kernels, zero biases: the distribution keras.applications.VGG16 draws."""
    kernel, bias = architecture.get_layer("fc1").get_weights()
    limit = np.sqrt(6.0 / (25088 + 4096))
    assert np.abs(kernel).max() <= limit and kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)
    assert not bias.any()
    conv = architecture.get_layer("block1_conv1").get_weights()[0]
    assert np.abs(conv).max() <= np.sqrt(6.0 / (3 * 9 + 64 * 9))

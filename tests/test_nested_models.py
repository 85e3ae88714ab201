"""Learners' own models: Keras Applications nested in transfer-learning models, residual nets."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import explain_classes, feature_and_logits_model, grad_cam, guided_grad_cam
from helpers.explain import default_layer


@pytest.fixture(scope="module")
def mobilenet():
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))


def sequential_transfer_model(base):
    return keras.Sequential(
        [keras.Input((96, 96, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="head")],
        name="transfer_sequential",
    )


def functional_transfer_model(base):
    image = keras.Input((96, 96, 3), name="photo")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(image)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax", name="head")(x), name="transfer_functional")


@pytest.mark.parametrize("build", [sequential_transfer_model, functional_transfer_model])
def test_two_output_model_works_on_nested_applications(mobilenet, build):
    model = build(mobilenet)
    layer = default_layer(model)
    assert layer == "out_relu"  # found inside the nested MobileNetV2
    # The naive way is the famous "Graph disconnected" error
    with pytest.raises(ValueError):
        keras.Model(model.inputs, [mobilenet.get_layer(layer).output, model.outputs[0]])
    two_outputs = feature_and_logits_model(model, layer)
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)
    features, outputs = (np.asarray(t) for t in two_outputs(x))
    np.testing.assert_allclose(outputs, np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    inner = keras.Model(mobilenet.inputs[0], mobilenet.get_layer(layer).output)
    inner_input = x / 127.5 - 1 if build is functional_transfer_model else x
    np.testing.assert_allclose(features, np.asarray(inner(inner_input)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("build", [sequential_transfer_model, functional_transfer_model])
def test_every_method_runs_on_a_nested_model_and_leaves_it_unchanged(mobilenet, build):
    model = build(mobilenet)
    photo = np.random.default_rng(1).uniform(0, 255, (120, 80, 3)).astype(np.float32)
    probe = np.random.default_rng(3).uniform(0, 255, (1, 96, 96, 3)).astype(np.float32)
    before = np.asarray(model(probe))
    result = explain_classes(model, photo, top_k=3)
    for entry in result:
        assert entry["gradcam"].map.shape == (96, 96) and np.isfinite(entry["guided_gradcam"].map).all()
        assert entry["gradcam"].coarse.shape == (3, 3)
    np.testing.assert_array_equal(before, np.asarray(model(probe)))


def test_residual_network_default_layer_and_grad_cam():
    keras.utils.set_random_seed(1)
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=4, classifier_activation=None)
    assert default_layer(model) == "conv5_block3_out"  # after the last add + ReLU
    photo = np.random.default_rng(2).uniform(0, 255, (64, 64, 3)).astype(np.float32)
    cam = grad_cam(model, photo, 1)
    assert cam.coarse.shape == (2, 2) and np.isfinite(cam.map).all()
    assert guided_grad_cam(model, photo, 1, layer="conv4_block6_out").coarse.shape == (4, 4)


def test_a_lambda_inside_a_nested_model_is_found_by_guided_backprop():
    from helpers import UnsupportedActivationError, guided_backprop

    keras.utils.set_random_seed(2)
    inner_input = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="inner_conv")(inner_input)
    inner = keras.Model(inner_input, keras.layers.Lambda(keras.activations.gelu, name="inner_gelu")(x), name="base")
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), inner, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)], name="outer"
    )
    photo = np.random.default_rng(4).uniform(0, 255, (16, 16, 3)).astype(np.float32)
    with pytest.raises(UnsupportedActivationError, match=r"'outer' has layers it cannot look inside: inner_gelu"):
        guided_backprop(model, photo)
    assert np.isfinite(grad_cam(model, photo).map).all()

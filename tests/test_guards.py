"""Models and options the methods cannot explain as given are refused with one clear sentence."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import gap_dense_model
from helpers import explain_classes, grad_cam, guided_backprop, guided_grad_cam, saliency, wrap_keras_model
from helpers.errors import (
    HelpersError,
    LayerError,
    ModelError,
    OptionError,
    UnsupportedActivationError,
    UnverifiedLayerError,
)
from helpers.graph.activations import unverified_layers


def _conv_model(*middle, head=None, channels=3, name="guarded"):
    """image -> conv (ReLU) -> middle layers -> GAP -> Dense(3) -> head."""
    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, channels))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    for layer in middle:
        x = layer(x)
    x = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(image, head(x) if head else x, name=name)


class Swish(keras.layers.Layer):
    def call(self, x):
        return x * keras.ops.sigmoid(x)


def test_guided_backprop_refuses_a_lambda_unless_told(random_image):
    model = _conv_model(keras.layers.Lambda(keras.activations.silu, name="hidden_silu"))
    with pytest.raises(UnverifiedLayerError, match=r"hidden_silu \(Lambda of silu\).*allow_unverified_layers=True"):
        guided_backprop(model, random_image)
    with pytest.raises(UnsupportedActivationError):  # what code catching the old error expects
        guided_grad_cam(model, random_image)
    assert guided_backprop(model, random_image, allow_unverified_layers=True).map.shape == (16, 16, 3)
    assert grad_cam(model, random_image).map.shape == (16, 16)  # Grad-CAM is fine with any layer


def test_custom_layers_and_bare_ops_are_unverified(random_image):
    custom = _conv_model(Swish(name="swish"))
    assert unverified_layers(custom) == ["swish (Swish with its own call)"]
    with pytest.raises(UnverifiedLayerError, match="swish"):
        explain_classes(custom, random_image)
    # keras.ops in a functional graph are operations, not layers: even an unpatched relu
    ops = _conv_model(keras.ops.relu, lambda x: x * 2.0 + 1.0)
    assert [name.split(" ", 1)[1] for name in unverified_layers(ops)] == ["(op Relu)"]
    # Keras's own layers, subclass-free, stay trusted: nothing to override for the usual models
    assert unverified_layers(gap_dense_model()) == []


def test_a_softmax_hidden_in_a_lambda_is_detected_by_its_values(random_image):
    model = _conv_model(head=keras.layers.Lambda(keras.activations.softmax, name="probs"))
    message = "outputs probabilities.*inside a Lambda layer; remove it or give the model that outputs logits"
    photo = random_image / 255  # 0-255 would saturate this untrained softmax to one-hot rows, which decide nothing
    with pytest.raises(ModelError, match=message):
        grad_cam(model, photo)
    with pytest.raises(ModelError, match=message):
        wrap_keras_model(model).logits(photo[None])
    # a softmax the layer types show is bypassed, so the same values are not refused there
    assert np.isfinite(grad_cam(gap_dense_model(softmax=True), random_image).logit)


def test_multi_output_models_are_refused():
    image = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(image))
    model = keras.Model(image, [keras.layers.Dense(3)(x), keras.layers.Dense(2)(x)], name="two_heads")
    expected = (
        r"^model 'two_heads' has 2 outputs; wrap the output you want to explain: "
        r"keras.Model\(model.input, model.outputs\[0\]\).$"
    )
    with pytest.raises(ModelError, match=expected):
        wrap_keras_model(model)
    with pytest.raises(ModelError, match=expected):
        grad_cam(model, np.zeros((16, 16, 3)))


def test_grayscale_models_need_a_converting_preprocess(random_image):
    model = _conv_model(channels=1, name="gray")
    with pytest.raises(
        ModelError, match=r"'gray' takes 1-channel input, but the methods take RGB photos; pass preprocess="
    ):
        grad_cam(model, random_image)
    with pytest.raises(
        ModelError, match=r"preprocess turns an RGB batch of shape \(1, 16, 16, 3\) into shape \(1, 16, 16, 3\)"
    ):
        wrap_keras_model(model, preprocess=lambda images: np.asarray(images, np.float32))
    classifier = wrap_keras_model(model, preprocess=lambda images: np.mean(images, axis=-1, keepdims=True) / 255)
    result = explain_classes(classifier, random_image, 0)[0]
    assert result["gradcam"].map.shape == (16, 16)
    gray = result["guided_backprop"].map
    assert gray.shape == (16, 16, 3) and np.array_equal(gray[..., 0], gray[..., 2]) and gray.any()


def test_all_zero_gradients_are_empty():
    # conv weights all -1 on a positive photo: every ReLU is off, so no gradient reaches the pixels
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 1, activation="relu", name="conv", kernel_initializer="ones")(image)
    model = keras.Model(image, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    model.get_layer("conv").set_weights([-np.ones((1, 1, 3, 2), np.float32), np.zeros(2, np.float32)])
    photo = np.full((8, 8, 3), 100.0, np.float32)
    for explanation in (guided_backprop(model, photo, 0), saliency(model, photo, 0)):
        assert explanation.empty and not explanation.map.any()
    assert not saliency(gap_dense_model(), np.random.default_rng(0).uniform(0, 255, (16, 16, 3)), 0).empty


def test_option_errors_name_the_valid_choices(random_image):
    model = gap_dense_model()
    with pytest.raises(LayerError, match=r"^layer '' is not a layer name; pass layer=None for the model's default"):
        grad_cam(model, random_image, layer="")
    with pytest.raises(LayerError, match="layer '' is not a layer name"):
        wrap_keras_model(model, last_conv_layer="")
    with pytest.raises(OptionError, match=r"^score must be 'logit' .* or 'softmax' .*, not 'prob'.$"):
        grad_cam(model, random_image, score="prob")
    with pytest.raises(OptionError, match=r"^give either targets \(\[1\]\) or top_k \(2\), not both"):
        explain_classes(model, random_image, [1], top_k=2)
    assert all(issubclass(error, HelpersError) for error in (OptionError, ModelError, UnverifiedLayerError))


def test_layer_suggestions_leave_out_the_input(random_image):
    with pytest.raises(LayerError, match=r"no layer named 'conv9'.*include 'conv1', 'conv2' \(see"):
        grad_cam(gap_dense_model(), random_image, layer="conv9")


def test_one_hot_logits_of_toy_models_are_not_taken_for_a_softmax():
    from helpers.graph import forward as gradients

    toy = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)], name="toy")
    gradients.check_logits(toy, np.array([[1.0, 0.0]]))  # undecided: not refused, looked at again
    with pytest.raises(ModelError, match="'toy' outputs probabilities"):
        gradients.check_logits(toy, np.array([[0.25, 0.75]]))
    gradients.check_logits(toy, np.array([[0.25, 0.75], [2.0, -1.0]]))  # one row proves logits
    gradients.check_logits(toy, np.array([[0.25, 0.75]]))  # and the model is not looked at again


def test_many_cached_traces_do_not_warn_a_learner(caplog, random_image):
    """One trace per (layer, mode, classes) is the design: TensorFlow's retracing notice is dropped."""
    import logging

    classifier = wrap_keras_model(gap_dense_model(7))
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for layer in ("conv1", "conv2"):
            for k in range(1, 5):
                explain_classes(classifier, random_image, top_k=k, layer=layer)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    logging.getLogger("tensorflow").warning("other messages still pass")
    assert [r.getMessage() for r in caplog.records] == ["other messages still pass"]

"""Guided backprop's ReLU rule: hand-worked values, in-place patching, always restored."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import UnsupportedActivationError, guided_backprop
from helpers.explain import gradients, guided_relu, patched_activations, use_backward_rule


def _grad(fn, x, upstream, rule):
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    with use_backward_rule(rule):
        return tape.gradient(y, x, output_gradients=tf.constant(upstream, tf.float32)).numpy()


def test_guided_relu_rule_by_hand():
    x, upstream = [-1.0, 2.0, 3.0, -4.0], [5.0, -6.0, 7.0, 8.0]
    # plain: pass where x > 0; guided: also where the upstream gradient > 0.
    np.testing.assert_array_equal(_grad(guided_relu, x, upstream, "plain"), [0, -6, 7, 0])
    np.testing.assert_array_equal(_grad(guided_relu, x, upstream, "guided"), [0, 0, 7, 0])
    # the forward pass is plain ReLU either way
    np.testing.assert_array_equal(guided_relu(tf.constant(x)).numpy(), [0, 2, 3, 0])


def test_guided_relu6_rule_by_hand():
    relu6 = lambda x: guided_relu(x, 6.0)  # noqa: E731
    x, upstream = [-1.0, 2.0, 7.0, 3.0], [1.0, 1.0, 1.0, -1.0]
    np.testing.assert_array_equal(_grad(relu6, x, upstream, "plain"), [0, 1, 0, -1])
    np.testing.assert_array_equal(_grad(relu6, x, upstream, "guided"), [0, 1, 0, 0])
    np.testing.assert_array_equal(relu6(tf.constant(x)).numpy(), [0, 2, 6, 3])


def hand_network():
    """x (2) -> 1x1 conv with ReLU (3 units) -> flatten -> dense (1 logit), weights chosen by hand."""
    image = keras.Input((1, 1, 2))
    h = keras.layers.Conv2D(3, 1, activation="relu", use_bias=False, name="conv")(image)
    h = keras.layers.Flatten()(h)
    y = keras.layers.Dense(1, use_bias=False, name="logit")(h)
    model = keras.Model(image, y)
    model.get_layer("conv").set_weights([np.array([[[[1, 2, -1], [-1, 1, 1]]]], np.float32)])
    model.get_layer("logit").set_weights([np.array([[1], [-1], [2]], np.float32)])
    return model


def test_guided_backprop_on_a_network_worked_by_hand():
    # x = (1, 2): pre-activations W1 x = (-1, 4, 1), h = (0, 4, 1), y = w2 . h = -4 + 2 = -2.
    # dy/dh = w2 = (1, -1, 2).
    # plain:  dy/dpre = (0, -1, 2)  -> dy/dx = W1^T (0, -1, 2) = (-4, 1)
    # guided: dy/dpre = (0,  0, 2)  -> dy/dx = W1^T (0,  0, 2) = (-2, 2)
    model = hand_network()
    x = np.array([[[[1.0, 2.0]]]], np.float32)
    plain = gradients.compute(model, x, "conv", class_indices=[0], guided=False)
    guided = gradients.compute(model, x, "conv", class_indices=[0], guided=True)
    assert plain.logits[0] == pytest.approx(-2.0)
    np.testing.assert_allclose(guided.input_gradients[0, 0, 0], [-2.0, 2.0])
    # dy/dA for Grad-CAM stays plain inside the guided pass: the head is linear, so dy/dh = w2
    np.testing.assert_allclose(guided.activation_gradients[0, 0, 0], [1.0, -1.0, 2.0])
    np.testing.assert_allclose(plain.activation_gradients[0, 0, 0], [1.0, -1.0, 2.0])
    # the plain rule through the same patched machinery gives ordinary backprop
    with patched_activations(model, guided=True):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = model(xt)
        with use_backward_rule("plain"):
            np.testing.assert_allclose(tape.gradient(y, xt).numpy()[0, 0, 0], [-4.0, 1.0])


def _snapshot(model, x):
    layer_state = [(layer.name, getattr(layer, "activation", None), "call" in vars(layer)) for layer in model.layers]
    return layer_state, np.asarray(model(x))


def _relu_model():
    keras.utils.set_random_seed(7)
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_relu")(image)
    x = keras.layers.Conv2D(4, 3, name="conv_linear")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5, activation="relu", name="fc")(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax", name="predictions")(x))


def test_patching_is_in_place_and_restored_even_after_an_error():
    model = _relu_model()
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 3)).astype(np.float32)
    before = _snapshot(model, x)
    # PT012 is silenced: the block is the point of the test (checks while patched, then an error inside)
    with pytest.raises(RuntimeError, match="boom"), patched_activations(model, guided=True) as patched:  # noqa: PT012
        assert patched is model  # no clone
        assert model.get_layer("conv_relu").activation is guided_relu
        assert "call" in vars(model.get_layer("relu6"))
        # logits: the final softmax is the identity while patched
        logits = np.asarray(model(x))
        raise RuntimeError("boom")
    after = _snapshot(model, x)
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), before[1], rtol=1e-5)


def test_plain_and_guided_traces_stay_apart():
    model = _relu_model()
    x = np.random.default_rng(2).normal(size=(1, 8, 8, 3)).astype(np.float32)
    first = gradients.compute(model, x, "relu6", class_indices=[1], guided=False)
    guided = gradients.compute(model, x, "relu6", class_indices=[1], guided=True)
    again = gradients.compute(model, x, "relu6", class_indices=[1], guided=False)
    np.testing.assert_array_equal(first.activation_gradients, again.activation_gradients)
    np.testing.assert_array_equal(first.logits, guided.logits)
    # guided input gradients really differ from plain ones on this network
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        with patched_activations(model, guided=False):
            y = model(xt)[0, 1]
    plain_input_gradient = tape.gradient(y, xt).numpy()[0]
    assert not np.allclose(plain_input_gradient, guided.input_gradients[0])


@pytest.mark.parametrize(
    ("activation", "shown_as"), [("swish", "silu"), ("gelu", "gelu"), ("tanh", "tanh"), ("elu", "elu")]
)
def test_other_activations_are_refused_and_nothing_changes(activation, shown_as, random_image):
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation=activation, name="conv")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(3)(x))
    with pytest.raises(UnsupportedActivationError, match=rf"conv \({shown_as}\).*Grad-CAM"):
        guided_backprop(model, random_image)
    assert model.get_layer("conv").activation.__name__ == shown_as


def test_leaky_relu_layer_is_refused(random_image):
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(3)(x))
    with pytest.raises(UnsupportedActivationError, match="leaky"):
        guided_backprop(model, random_image)


def test_plain_input_gradients_on_the_hand_network():
    """Same network as above: plain dy/dx = (-4, 1), even after a guided pass on the same model."""
    model = hand_network()
    x = np.array([[[[1.0, 2.0]]]], np.float32)
    gradients.compute(model, x, "conv", class_indices=[0], guided=True)
    plain = gradients.compute(model, x, "conv", class_indices=[0], plain_inputs=True)
    np.testing.assert_allclose(plain.input_gradients[0, 0, 0], [-4.0, 1.0])


def test_saliency_differs_from_guided_backprop_and_works_with_any_activation(random_image):
    from helpers import saliency

    model = _relu_model()
    # small values: this model has no preprocessing, and 0-255 inputs would saturate its ReLU6
    photo = np.random.default_rng(5).normal(size=(8, 8, 3)).astype(np.float32)
    plain, guided = saliency(model, photo, 1).map, guided_backprop(model, photo, 1).map
    assert plain.shape == guided.shape == (8, 8, 3) and np.abs(plain).max() > 0
    assert not np.allclose(plain, guided)
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="gelu", name="conv")(image)
    smooth = keras.Model(image, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    assert np.isfinite(saliency(smooth, random_image, 0).map).all()

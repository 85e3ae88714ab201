"""Grad-CAM++ and Score-CAM against values worked out by hand; layer helpers on EfficientNet-Lite0."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import gap_dense_model
from helpers import wrap_keras_model
from helpers.explain import (
    block_output_layers,
    channel_masks,
    grad_cam_plus_plus,
    grad_cam_plus_plus_weights,
    score_cam,
    stage_layers,
)
from helpers.explain.maps import normalize_map


def test_grad_cam_plus_plus_weights_by_hand():
    # one channel on a 1x2 grid: A = [1, 3] (sum 4), g = [1, 2]
    activations = np.array([[[1.0], [3.0]]])
    gradients = np.array([[[1.0], [2.0]]])
    # alpha = g^2 / (2 g^2 + 4 g^3): 1 / (2 + 4) = 1/6 and 4 / (8 + 32) = 1/10
    # w = 1/6 * 1 + 1/10 * 2
    np.testing.assert_allclose(grad_cam_plus_plus_weights(activations, gradients), [1 / 6 + 2 / 10])
    # negative gradients count for nothing; a zero gradient gives alpha = 0, not 0/0
    np.testing.assert_allclose(grad_cam_plus_plus_weights(activations, -gradients), [0.0])
    np.testing.assert_allclose(grad_cam_plus_plus_weights(activations, 0 * gradients), [0.0])


def _two_channel_model():
    """4x4 RGB -> 1x1 conv 'conv' (channel 0 = red, channel 1 = green, ReLU) -> GAP -> Dense.

    logit_0 = 4 * mean(red), logit_1 = 4 * mean(green).
    """
    image = keras.Input((4, 4, 3), name="image")
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="conv")
    dense = keras.layers.Dense(2, use_bias=False, name="predictions")
    model = keras.Model(image, dense(keras.layers.GlobalAveragePooling2D()(conv(image))))
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[0, 0, 0, 0] = 1.0  # red -> channel 0
    kernel[0, 0, 1, 1] = 1.0  # green -> channel 1
    conv.set_weights([kernel])
    dense.set_weights([4.0 * np.eye(2, dtype=np.float32)])
    return wrap_keras_model(model, class_names=("red", "green"))


# red in the top-left 2x2 block, green in the bottom-right one
IMAGE = np.zeros((4, 4, 3), np.float32)
IMAGE[:2, :2, 0] = 1.0
IMAGE[2:, 2:, 1] = 1.0
TOP_LEFT = np.zeros((4, 4), np.float32)
TOP_LEFT[:2, :2] = 1.0


def test_score_cam_by_hand():
    """Mask 0 (red block) keeps only red: logits (1, 0); mask 1 keeps only green: logits (0, 1).

    The baseline X * 0 gives logits (0, 0), p = 1/2. So for class "red":
    w_0 = sigmoid(1) - 1/2 = 0.2311, w_1 = sigmoid(-1) - 1/2 = -0.2311, and
    L = ReLU(0.2311 * red block - 0.2311 * green block) is the red block.
    """
    classifier = _two_channel_model()
    result = score_cam(classifier, IMAGE, "red", layer="conv", progress=False)
    s = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(result.weights, [s - 0.5, 0.5 - s], rtol=1e-5)
    np.testing.assert_allclose(result.coarse, TOP_LEFT, atol=1e-6)
    np.testing.assert_allclose(result.map, TOP_LEFT, atol=1e-6)  # 4x4 layer on a 4x4 input
    assert result.method == "score_cam" and result.class_name == "red" and not result.empty
    # logits (1, 0) for the whole image too (each block is a quarter: mean 0.25 * 4 = 1)
    assert result.probability == pytest.approx(0.5)
    # the other class: the green block, with opposite weights
    green = score_cam(classifier, IMAGE, "green", layer="conv", progress=False)
    np.testing.assert_allclose(green.weights, [0.5 - s, s - 0.5], rtol=1e-5)
    np.testing.assert_allclose(green.coarse, TOP_LEFT[::-1, ::-1], atol=1e-6)


def test_score_cam_keeps_only_the_strongest_channels():
    classifier = _two_channel_model()
    image = IMAGE.copy()
    image[:, :2, 1] = 1.0  # green now covers more: channel 1 is the strongest
    result = score_cam(classifier, image, "red", layer="conv", max_channels=1, progress=False)
    assert result.weights[0] == 0.0 and result.weights[1] != 0.0


def test_grad_cam_plus_plus_by_hand_on_the_two_channel_model():
    """g = dy_red/dA^0 = 4/16 = 1/4 everywhere, sum A^0 = 4: alpha = 1/(2 + 4/4) = 1/3,
    w_0 = 16 * 1/3 * 1/4 = 4/3; g = 0 for channel 1: w_1 = 0."""
    classifier = _two_channel_model()
    result = grad_cam_plus_plus(classifier, IMAGE, "red", layer="conv")
    np.testing.assert_allclose(result.weights, [4 / 3, 0.0], rtol=1e-5)
    np.testing.assert_allclose(result.coarse, TOP_LEFT, atol=1e-6)
    assert result.method == "gradcam_plus_plus"


@pytest.mark.parametrize("seed", [0, 1])
def test_grad_cam_plus_plus_on_global_average_pooling(seed, random_image):
    """With GAP + Dense, g = v_kc / Z everywhere, so w_k = v_kc / (2 + mean(A^k) v_kc) for v_kc > 0."""
    model = gap_dense_model(seed)
    classifier = wrap_keras_model(model)
    features = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    activations = np.asarray(features(random_image[None]))[0].astype(np.float64)
    dense = model.get_layer("predictions").get_weights()[0].astype(np.float64)
    for c in range(4):
        v = dense[:, c]
        expected = np.where(v > 0, v / (2.0 + activations.mean(axis=(0, 1)) * v), 0.0)
        result = grad_cam_plus_plus(classifier, random_image, c, layer="conv2")
        np.testing.assert_allclose(result.weights, expected, rtol=1e-4, atol=1e-7)
        cam, _ = normalize_map(activations @ expected)
        np.testing.assert_allclose(result.coarse, cam, atol=1e-5)


def test_channel_masks_are_min_max_scaled_and_constant_channels_are_zero():
    activations = np.zeros((2, 2, 3), np.float32)
    activations[..., 0] = [[1, 3], [5, 7]]
    activations[..., 2] = 4.0  # constant
    masks = channel_masks(activations, [0, 2], (2, 2))
    np.testing.assert_allclose(masks[0], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_array_equal(masks[1], 0)
    many = np.random.default_rng(0).random((3, 3, 600)).astype(np.float32)  # over OpenCV 5's 128-channel limit
    assert channel_masks(many, np.arange(600), (6, 6)).shape == (600, 6, 6)


def test_layers_at_several_depths_on_lite0(lite0):
    assert stage_layers(lite0) == [
        "block1a_project_bn",
        "block2b_add",
        "block3b_add",
        "block5c_add",
        "top_activation",
    ]
    blocks = block_output_layers(lite0)
    assert blocks[0] == "stem_activation" and blocks[-1] == "top_activation"
    assert "block6d_add" in blocks and "block4a_project_bn" in blocks and len(blocks) == 18

"""Grad-CAM, counterfactuals and Guided Grad-CAM on small models with known answers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import gap_dense_model
from helpers import (
    ClassIndexError,
    LayerError,
    counterfactual,
    explain_classes,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    wrap_keras_model,
)
from helpers.explain import grad_cam_map, model_input, normalize_map, upsample


def test_channel_weights_and_map_by_hand():
    # two channels on a 2x2 grid
    activations = np.zeros((2, 2, 2), np.float32)
    activations[..., 0] = [[1, 0], [0, 0]]
    activations[..., 1] = [[0, 0], [0, 2]]
    gradients = np.zeros((2, 2, 2), np.float32)
    gradients[..., 0] = [[4, 0], [0, 0]]  # mean 1
    gradients[..., 1] = [[-2, -2], [-2, -2]]  # mean -2
    weights, heatmap, empty = grad_cam_map(activations, gradients)
    np.testing.assert_allclose(weights, [1.0, -2.0])
    # sum_k alpha_k A^k = [[1, 0], [0, -4]] -> ReLU -> [[1, 0], [0, 0]] -> / max
    np.testing.assert_allclose(heatmap, [[1, 0], [0, 0]])
    assert not empty
    # counterfactual: alpha = (-1, 2) -> [[-1, 0], [0, 4]] -> [[0, 0], [0, 1]]
    weights, heatmap, _ = grad_cam_map(activations, gradients, counterfactual=True)
    np.testing.assert_allclose(weights, [-1.0, 2.0])
    np.testing.assert_allclose(heatmap, [[0, 0], [0, 1]])


@pytest.mark.parametrize("raw", [np.zeros((3, 3)), -np.ones((3, 3)), np.full((3, 3), -1e-30)])
def test_empty_maps_are_zeros_not_nan(raw):
    heatmap, empty = normalize_map(raw)
    assert empty and not np.isnan(heatmap).any() and not heatmap.any()


def test_non_finite_maps_raise_a_clear_error():
    with pytest.raises(Exception, match="NaN or infinite"):
        normalize_map(np.array([[np.nan, 1.0]]))


def test_upsample_is_bilinear_with_pixel_centres():
    coarse = np.array([[0.0, 1.0]], np.float32)
    wide = upsample(coarse, (1, 4))
    # centres of 4 output pixels map to x = -0.25, 0.25, 0.75, 1.25 -> clamped bilinear
    np.testing.assert_allclose(wide, [[0.0, 0.25, 0.75, 1.0]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grad_cam_equals_cam_on_gap_plus_dense(seed, random_image):
    """Section 3.1 of the paper: with GAP + one Dense layer, Grad-CAM is CAM up to a positive scale."""
    model = gap_dense_model(seed)
    classifier = wrap_keras_model(model)
    features = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    activations = np.asarray(features(random_image[None]))[0]
    dense_weights = model.get_layer("predictions").get_weights()[0]  # (channels, classes)
    for c in range(4):
        cam_raw = activations @ dense_weights[:, c]
        expected, _ = normalize_map(cam_raw)
        result = grad_cam(classifier, random_image, c, layer="conv2")
        np.testing.assert_allclose(result.coarse, expected, atol=1e-5)
        # alpha_k = w_kc / (h * w): the same direction as the Dense weights
        h, w = activations.shape[:2]
        np.testing.assert_allclose(result.weights, dense_weights[:, c] / (h * w), rtol=1e-4, atol=1e-7)


def test_grad_cam_agrees_with_tf_keras_vis(random_image):
    """An independent implementation (tf-keras-vis) on the same model and layer."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore

    keras.utils.set_random_seed(3)
    image = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    model = keras.Model(image, keras.layers.Dense(5, name="predictions")(x))
    photo = np.random.default_rng(4).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    scale = lambda images: images / 127.5 - 1.0  # noqa: E731
    classifier = wrap_keras_model(model, preprocess=scale)
    x_in = scale(photo[None])
    for c in range(5):
        ours = grad_cam(classifier, photo, c, layer="last_conv").coarse
        theirs = Gradcam(model, clone=True)(
            CategoricalScore([c]),
            x_in,
            penultimate_layer="last_conv",
            expand_cam=False,
            normalize_cam=True,
        )[0]
        if ours.max() == 0:
            continue
        correlation = np.corrcoef(ours.ravel(), np.asarray(theirs).ravel())[0, 1]
        assert correlation >= 0.99, (c, correlation)


def test_top_k_from_one_pass_equals_one_by_one(random_image):
    classifier = wrap_keras_model(gap_dense_model(5, classes=6))
    batch = explain_classes(classifier, random_image, top_k=3, layer="conv1")
    logits = classifier.logits(random_image[None])[0]
    assert [e["gradcam"].class_index for e in batch] == list(np.argsort(-logits)[:3])
    for entry in batch:
        single = explain_classes(classifier, random_image, [entry["gradcam"].class_index], layer="conv1")[0]
        for method in ("gradcam", "counterfactual", "guided_backprop", "guided_gradcam"):
            np.testing.assert_allclose(entry[method].map, single[method].map, rtol=1e-5, atol=1e-6)


def test_guided_grad_cam_is_guided_backprop_times_grad_cam(random_image):
    classifier = wrap_keras_model(gap_dense_model(6))
    for c in range(4):
        product = guided_grad_cam(classifier, random_image, c).map
        separately = (
            guided_backprop(classifier, random_image, c).map * grad_cam(classifier, random_image, c).map[..., None]
        )
        np.testing.assert_allclose(product, separately, rtol=1e-5, atol=1e-7)


def test_counterfactual_is_grad_cam_of_the_negated_gradient(random_image):
    classifier = wrap_keras_model(gap_dense_model(7))
    plain = grad_cam(classifier, random_image, 0)
    counter = counterfactual(classifier, random_image, 0)
    np.testing.assert_allclose(counter.weights, -plain.weights)
    assert not np.isnan(counter.map).any()


def test_softmax_score_differs_from_logit_and_matches_its_formula(random_image):
    model = gap_dense_model(8, softmax=True)
    classifier = wrap_keras_model(model)
    logit_cam = grad_cam(classifier, random_image, 1)
    softmax_cam = grad_cam(classifier, random_image, 1, score="softmax")
    assert not np.allclose(logit_cam.weights, softmax_cam.weights)
    # d p_c / dA = p_c (dy_c/dA - sum_j p_j dy_j/dA): the weights follow that formula
    probabilities = np.asarray(model(random_image[None]))[0]
    all_weights = np.stack([grad_cam(classifier, random_image, j).weights for j in range(4)])
    expected = probabilities[1] * (all_weights[1] - probabilities @ all_weights)
    np.testing.assert_allclose(softmax_cam.weights, expected, rtol=1e-3, atol=1e-8)


def test_final_softmax_is_bypassed_for_logits(random_image):
    model = gap_dense_model(9, softmax=True)
    result = grad_cam(model, random_image, 2)
    probabilities = np.asarray(model(random_image[None]))[0]
    assert result.probability == pytest.approx(float(probabilities[2]), rel=1e-5)
    # a logit, not a probability: softmax of all four logits gives the model's output
    logits = [grad_cam(model, random_image, c).logit for c in range(4)]
    np.testing.assert_allclose(np.exp(logits) / np.sum(np.exp(logits)), probabilities, rtol=1e-5)


def test_all_negative_evidence_gives_an_empty_map_not_nan():
    # ReLU features of a constant image are constant; a negative dense weight makes the map negative
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 1, activation="relu", name="conv", kernel_initializer="ones")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(1, kernel_initializer="ones", name="predictions")(x))
    model.get_layer("predictions").set_weights([-np.ones((2, 1), np.float32), np.zeros(1, np.float32)])
    result = grad_cam(model, np.full((8, 8, 3), 100.0, np.float32), 0)
    assert result.empty and not result.map.any() and not np.isnan(result.map).any()
    gg = guided_grad_cam(model, np.full((8, 8, 3), 100.0, np.float32), 0)
    assert gg.empty and not np.isnan(gg.map).any()


def test_layer_and_class_errors_are_clear(random_image):
    model = gap_dense_model(0)
    with pytest.raises(LayerError, match="no layer named 'conv9'.*'conv2'"):
        grad_cam(model, random_image, 0, layer="conv9")
    with pytest.raises(LayerError, match="'predictions' outputs shape.*not a feature map"):
        grad_cam(model, random_image, 0, layer="predictions")
    with pytest.raises(ClassIndexError, match="class index 4 is out of range.*0..3"):
        grad_cam(model, random_image, 4)
    with pytest.raises(ClassIndexError, match="out of range"):
        grad_cam(model, random_image, -1)
    with pytest.raises(ClassIndexError, match="unknown gap_dense class name .zebra."):
        grad_cam(model, random_image, "zebra")
    with pytest.raises(ClassIndexError, match="top_k must be an int from 1 to 4"):
        explain_classes(model, random_image, top_k=5)


def test_a_model_without_conv_layers_is_refused_by_the_cams_only():
    from helpers import guided_backprop, saliency

    image = keras.Input((8, 8, 3))
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(image))
    model = keras.Model(image, keras.layers.Dense(3)(hidden))
    x = np.random.default_rng(0).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    with pytest.raises(LayerError, match="no 2-D convolutional layer"):
        grad_cam(model, x, 0)
    # The gradient methods need no conv layer: they equal dy/dx of the dense network.
    guided, plain = guided_backprop(model, x, 0), saliency(model, x, 0)
    assert guided.layer is None and guided.kind == "gradient" and guided.map.shape == (8, 8, 3)
    w1, b1 = (v.numpy() for v in model.layers[2].weights)
    w2 = model.layers[3].weights[0].numpy()
    active = (x.reshape(-1) @ w1 + b1) > 0
    expected = (w1 * active) @ w2[:, 0]  # plain backprop through the ReLU
    np.testing.assert_allclose(plain.map.reshape(-1), expected, rtol=1e-5, atol=1e-7)


def test_wrong_image_shapes_are_refused():
    from helpers import ImageError

    model = gap_dense_model(0)
    with pytest.raises(ImageError, match=r"shape \(height, width, 3\)"):
        grad_cam(model, np.zeros((1, 16, 16, 3)), 0)
    with pytest.raises(ImageError, match="NaN"):
        grad_cam(model, np.full((16, 16, 3), np.nan), 0)


def test_model_input_resizes_the_whole_photo():
    classifier = wrap_keras_model(gap_dense_model(0))
    photo = np.zeros((32, 64, 3), np.uint8)
    photo[:, 32:] = 255  # right half white
    resized, x = model_input(classifier, photo)
    assert resized.shape == (16, 16, 3) and x.shape == (1, 16, 16, 3)
    assert resized[:, :7].max() == 0 and resized[:, 9:].min() == 255  # no crop: halves stay halves


def test_any_sequence_of_class_counts_reuses_or_builds_the_right_trace(random_image):
    """One class, then two, then one again (a learner's natural order) all work."""
    classifier = wrap_keras_model(gap_dense_model(10))
    one = explain_classes(classifier, random_image, [1])
    two = explain_classes(classifier, random_image, [1, 2])
    again = explain_classes(classifier, random_image, [2])
    np.testing.assert_allclose(two[0]["gradcam"].map, one[0]["gradcam"].map, atol=1e-6)
    np.testing.assert_allclose(two[1]["gradcam"].map, again[0]["gradcam"].map, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 130, 300])
def test_upsample_keeps_every_channel(channels):
    coarse = np.random.default_rng(channels).uniform(size=(3, 4, channels)).astype(np.float32)
    wide = upsample(coarse, (6, 8))
    assert wide.shape == (6, 8, channels)
    np.testing.assert_allclose(wide[..., -1], upsample(coarse[..., -1], (6, 8)), atol=1e-6)


def test_classifier_logits_are_pre_softmax_even_for_a_softmax_model(random_image):
    model = gap_dense_model(11, softmax=True)
    classifier = wrap_keras_model(model)
    logits = classifier.logits(np.stack([random_image, random_image / 2]), batch_size=1)
    probabilities = np.asarray(model(np.stack([random_image, random_image / 2])))
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), probabilities, rtol=1e-5)
    assert (logits < 0).any()  # not probabilities


def test_large_batches_are_split_by_the_activation_budget(monkeypatch, random_image):
    from helpers.graph import forward as gradients

    model = gap_dense_model(12)
    classifier = wrap_keras_model(model)
    images = np.stack([random_image * s for s in np.linspace(0.1, 1.0, 7)])
    whole = classifier.logits(images)
    monkeypatch.setattr(gradients, "_limits", type(gradients._limits)())
    monkeypatch.setattr(gradients, "ACTIVATION_BUDGET", 16 * 16 * 6 * 16 * 3)  # three images at a time
    assert gradients.batch_limit(model) == 3
    np.testing.assert_allclose(classifier.logits(images), whole, rtol=1e-5, atol=1e-6)


def test_batch_limit_of_the_real_models(lite0):
    from helpers.graph.forward import batch_limit
    from helpers.models.vgg16 import build_vgg16

    assert batch_limit(lite0.model) == 13
    assert batch_limit(build_vgg16()) == 5


def test_an_unknown_layer_suggests_conv_layers_not_pooling(random_image):
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv_a")(image)
    x = keras.layers.MaxPooling2D(name="pool_a")(x)
    x = keras.layers.Conv2D(4, 3, name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(image, keras.layers.Dense(2)(x))
    with pytest.raises(LayerError, match="has no layer named 'conv_c'") as error:
        grad_cam(model, random_image, 0, layer="conv_c")
    assert "'conv_a', 'conv_b'" in str(error.value) and "pool" not in str(error.value) and "gap" not in str(error.value)

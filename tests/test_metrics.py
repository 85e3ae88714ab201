"""Metrics on hand-made maps and a toy classifier, with answers worked out by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import CAT_BOX, DOG_BOX
from helpers import Classifier, metrics

# ---------------------------------------------------------------- localization


def test_a_box_shaped_map_inside_the_box_scores_one():
    box = (2, 3, 6, 8)  # x0, y0, x1, y1 in map pixels
    saliency = metrics.box_mask((10, 12), box).astype(np.float32)
    assert saliency.sum() == 4 * 5
    assert metrics.pointing_game_energy(saliency, box) == pytest.approx(1.0)
    # the same map against a box next to it: no energy at all
    assert metrics.pointing_game_energy(saliency, (6, 3, 10, 8)) == pytest.approx(0.0)


def test_pointing_game_with_a_box_on_the_photo():
    """The cat_dog boxes are in 640x480 photo pixels; the map is 224x224 over the whole photo."""
    size = (480, 640)
    dog = metrics.box_mask((224, 224), DOG_BOX, image_size=size)
    assert metrics.pointing_game_energy(dog.astype(float), DOG_BOX, image_size=size) == pytest.approx(1.0)
    # the boxes overlap where the cat's head meets the dog's paws: x 215-475, y 225-300 of the dog's 260 x 280
    overlap = (475 - 215) * (300 - 225) / ((475 - 215) * (300 - 20))
    assert metrics.pointing_game_energy(dog.astype(float), CAT_BOX, image_size=size) == pytest.approx(overlap, abs=0.01)
    # a uniform map scores the box's share of the area: (260 * 280) / (640 * 480) = 0.237
    uniform = np.ones((224, 224))
    expected = (475 - 215) * (300 - 20) / (640 * 480)
    assert metrics.pointing_game_energy(uniform, DOG_BOX, image_size=size) == pytest.approx(expected, abs=0.01)
    assert metrics.box_area_fraction((224, 224), DOG_BOX, size) == pytest.approx(expected, abs=0.01)


def test_pointing_game_energy_by_hand_and_on_rgb_maps():
    saliency = np.zeros((4, 4))
    saliency[0, 0] = 3.0  # inside (0, 0, 2, 2)
    saliency[3, 3] = 1.0  # outside
    assert metrics.pointing_game_energy(saliency, (0, 0, 2, 2)) == pytest.approx(0.75)
    # RGB maps count |values| summed over channels
    rgb = np.zeros((4, 4, 3))
    rgb[0, 0] = [1.0, -1.0, 1.0]  # mass 3
    rgb[3, 3] = [0.0, -1.0, 0.0]  # mass 1
    assert metrics.pointing_game_energy(rgb, (0, 0, 2, 2)) == pytest.approx(0.75)
    assert metrics.pointing_game_energy(np.zeros((4, 4)), (0, 0, 2, 2)) == 0.0


def test_iou_by_hand():
    assert metrics.iou((10, 20, 50, 60), (10, 20, 50, 60)) == pytest.approx(1.0)
    assert metrics.iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(2 / 6)
    assert metrics.iou((0, 0, 2, 2), (2, 2, 4, 4)) == 0.0
    assert metrics.iou((0, 0, 4, 4), (1, 1, 3, 3)) == pytest.approx(4 / 16)
    assert metrics.iou(None, (0, 0, 1, 1)) == 0.0


def test_box_from_map_keeps_the_largest_component_above_15_percent():
    saliency = np.zeros((10, 10))
    saliency[1:3, 1:3] = 1.0  # the peak, 4 pixels
    saliency[5:9, 4:9] = 0.2  # above 15 % of the peak, 20 pixels: the largest component
    saliency[0, 9] = 0.1  # below 15 %: ignored
    assert metrics.box_from_map(saliency) == (4, 5, 9, 9)
    # a lower threshold joins nothing new; a higher one drops the big weak blob
    assert metrics.box_from_map(saliency, threshold=0.5) == (1, 1, 3, 3)
    # in photo coordinates: a 10x10 map over a 100x200 (h x w) photo
    assert metrics.box_from_map(saliency, image_size=(100, 200)) == (80, 50, 180, 90)
    assert metrics.box_from_map(np.zeros((5, 5))) is None


def test_box_from_a_box_shaped_map_has_iou_one_with_the_box():
    box = (3, 2, 9, 7)
    saliency = metrics.box_mask((12, 12), box).astype(float)
    assert metrics.iou(metrics.box_from_map(saliency), box) == pytest.approx(1.0)


# ---------------------------------------------------------------- similarity


def test_spearman_by_hand():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert metrics.spearman(a, a**3) == pytest.approx(1.0)  # same ranking
    assert metrics.spearman(a, -a) == pytest.approx(-1.0)
    signed = a - 7.5  # -7.5 ... 7.5
    # |signed| ranks the pixels the same as |-signed|, the signs are opposite
    assert metrics.spearman(signed, -signed, absolute=True) == pytest.approx(1.0)
    assert metrics.spearman(signed, -signed, absolute=False) == pytest.approx(-1.0)
    # a constant (empty) map keeps no ranking: 0, not NaN
    assert metrics.spearman(a, np.zeros_like(a)) == 0.0


def test_spearman_on_rgb_maps_sums_the_channels():
    rng = np.random.default_rng(0)
    rgb = rng.normal(size=(8, 8, 3))
    assert metrics.spearman(rgb, rgb.sum(axis=-1)) == pytest.approx(1.0)
    assert metrics.spearman(rgb, np.abs(rgb).sum(axis=-1), absolute=True) == pytest.approx(1.0)


def test_ssim_is_one_for_the_same_map_at_any_scale():
    rng = np.random.default_rng(1)
    saliency = rng.random((32, 32))
    assert metrics.ssim(saliency, 3.0 * saliency) == pytest.approx(1.0)
    assert metrics.ssim(saliency, rng.random((32, 32))) < 0.2


# ---------------------------------------------------------------- deletion / insertion


def _toy_classifier(softmax: bool = False):
    """Two classes on 8x8 RGB: logit_0 = (sum of the top-left 4x4 block, 0-1 scale) / 8, logit_1 = 0."""
    image = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(image)
    dense = keras.layers.Dense(2, use_bias=False, activation="softmax" if softmax else None)
    model = keras.Model(image, dense(flat))
    weights = np.zeros((8, 8, 3, 2), np.float32)
    weights[:4, :4, :, 0] = 1.0 / 8.0
    dense.set_weights([weights.reshape(-1, 2)])
    calls = []

    def preprocess(images):
        calls.append(len(images))
        return np.asarray(images, np.float32) / 255.0

    classifier = Classifier(
        name="toy",
        model=model,
        preprocess=preprocess,
        input_size=(8, 8),
        last_conv_layer="",
        class_names=("block", "nothing"),
    )
    return classifier, calls


TOY_IMAGE = np.full((8, 8, 3), 255.0, np.float32)  # 48 ones in the block: logit_0 = 6
IDEAL = np.zeros((8, 8), np.float32)
IDEAL[:4, :4] = 1.0


def test_an_ideal_map_deletes_faster_than_a_random_map():
    classifier, calls = _toy_classifier()
    ideal = metrics.deletion_curve(classifier, TOY_IMAGE, IDEAL, 0, steps=16, baseline="black")
    random = metrics.deletion_curve(
        classifier, TOY_IMAGE, metrics.random_map((8, 8), seed=0), 0, steps=16, baseline="black"
    )
    assert ideal.auc < random.auc
    # by hand: the block is 16 of 64 pixels, gone after 4 of 16 steps; p starts at sigmoid(6)
    assert ideal.scores[0] == pytest.approx(1 / (1 + np.exp(-6.0)))
    np.testing.assert_allclose(ideal.scores[4:], 0.5)
    np.testing.assert_allclose(ideal.fractions, np.linspace(0, 1, 17))
    assert ideal.kind == "deletion" and ideal.class_index == 0
    # each curve is one batch of steps + 1 images through the model
    assert calls == [17, 17]


def test_an_ideal_map_inserts_faster_than_a_random_map():
    classifier, _ = _toy_classifier()
    ideal = metrics.insertion_curve(classifier, TOY_IMAGE, IDEAL, "block", steps=16, baseline="black")
    random = metrics.insertion_curve(
        classifier, TOY_IMAGE, metrics.random_map((8, 8), seed=0), "block", steps=16, baseline="black"
    )
    assert ideal.auc > random.auc
    assert ideal.scores[0] == pytest.approx(0.5)
    np.testing.assert_allclose(ideal.scores[4:], 1 / (1 + np.exp(-6.0)), rtol=1e-6)


def test_curves_score_softmax_of_logits_even_if_the_model_ends_in_softmax():
    plain, _ = _toy_classifier(softmax=False)
    with_softmax, _ = _toy_classifier(softmax=True)
    a = metrics.deletion_curve(plain, TOY_IMAGE, IDEAL, 0, steps=4, baseline="black")
    b = metrics.deletion_curve(with_softmax, TOY_IMAGE, IDEAL, 0, steps=4, baseline="black")
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_perturbation_batch_goes_from_the_image_to_the_substrate():
    image = np.random.default_rng(0).uniform(0, 255, (6, 5, 3)).astype(np.float32)
    substrate = np.zeros_like(image)
    saliency = np.arange(30, dtype=float).reshape(6, 5)
    fractions, images = metrics.perturbation_batch(image, saliency, kind="deletion", steps=3, substrate=substrate)
    np.testing.assert_allclose(fractions, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(images[0], image)
    np.testing.assert_array_equal(images[-1], substrate)
    # the first third deleted is the 10 most salient pixels: the bottom two rows
    np.testing.assert_array_equal(images[1][4:], 0)
    np.testing.assert_array_equal(images[1][:4], image[:4])
    _, inserted = metrics.perturbation_batch(image, saliency, kind="insertion", steps=3, substrate=substrate)
    np.testing.assert_array_equal(inserted[0], substrate)
    np.testing.assert_array_equal(inserted[-1], image)
    with pytest.raises(ValueError, match="map is"):
        metrics.perturbation_batch(image, np.zeros((4, 4)), kind="deletion", substrate=substrate)


def test_auc_random_map_and_blur():
    assert metrics.auc([0, 0.5, 1], [1, 1, 1]) == pytest.approx(1.0)
    assert metrics.auc([0, 1], [1, 0]) == pytest.approx(0.5)
    np.testing.assert_array_equal(metrics.random_map((5, 5), seed=3), metrics.random_map((5, 5), seed=3))
    assert not np.array_equal(metrics.random_map((5, 5), seed=3), metrics.random_map((5, 5), seed=4))
    flat = np.full((20, 20, 3), 100.0, np.float32)
    np.testing.assert_allclose(metrics.blur(flat), flat, atol=1e-4)

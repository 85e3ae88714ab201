"""helpers.shortcut: the planted-shortcut dataset and the small CNN of notebook 09.

The generator tests are instant. The model tests train two small CNNs once per module (the biased
and the fixed one, about 20 s of CPU each) and check the notebook's story with margins:

* biased model: swapped-set accuracy <= 0.3 (chance is 0.5), Guided Grad-CAM puts >= 0.3 of its mass on
  the marker and Grad-CAM >= twice a uniform map's share (0.016);
* fixed model: accuracy >= 0.85 on both test sets, marker share <= the uniform share for Grad-CAM and
  <= 0.05 for Guided Grad-CAM.

Measured with seeds 0-3 (SEED below): biased swapped accuracy 0.05-0.07, Grad-CAM share 0.11-0.60,
Guided Grad-CAM share 0.64-0.78; fixed accuracy 1.00, shares <= 0.001.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import grad_cam, metrics, shortcut, wrap_keras_model

SEED = 0
N_TRAIN, EPOCHS = 2000, 6  # as in the notebook: fewer images or epochs leave the fixed model unsure of the shapes
UNIFORM = metrics.box_area_fraction((shortcut.SIZE, shortcut.SIZE), shortcut.MARKER_BOX)  # 64 / 4096


def test_same_seed_gives_identical_arrays():
    a = shortcut.make_dataset(64, seed=3)
    b = shortcut.make_dataset(64, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(a.images, shortcut.make_dataset(64, seed=4).images)


def test_images_labels_and_box():
    images, labels, has_marker, box = shortcut.make_dataset(40, seed=1)
    assert images.shape == (40, shortcut.SIZE, shortcut.SIZE, 3) and images.dtype == np.uint8
    assert labels.shape == has_marker.shape == (40,) and has_marker.dtype == bool
    assert sorted(np.unique(labels)) == [0, 1] and labels.sum() == 20  # balanced classes
    x0, y0, x1, y1 = box
    marked = images[has_marker]
    assert (marked[:, y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] == 255).all()  # the white patch
    assert (marked[:, y0, x0:x1] == 0).all()  # its black border


@pytest.mark.parametrize("rate", [0.95, 0.5, 0.8])
def test_marker_statistics(rate):
    data = shortcut.make_dataset(400, marker_rate=rate, seed=2)
    on_squares = data.has_marker[data.labels == 1].mean()
    on_discs = data.has_marker[data.labels == 0].mean()
    assert abs(on_squares - rate) <= 0.01 and abs(on_discs - (1 - rate)) <= 0.01


def test_swapped_set_puts_the_marker_on_the_other_class():
    data = shortcut.make_dataset(400, marker_rate=0.95, swap=True, seed=2)
    assert abs(data.has_marker[data.labels == 0].mean() - 0.95) <= 0.01
    assert abs(data.has_marker[data.labels == 1].mean() - 0.05) <= 0.01


def test_bad_rate_is_refused():
    with pytest.raises(ValueError, match="marker_rate"):
        shortcut.make_dataset(4, marker_rate=1.5)


def test_small_cnn_has_a_fully_connected_head():
    model = shortcut.build_small_cnn(0)
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["global_max", "fc", "logits"] and "last_conv" in names
    assert shortcut.build_small_cnn(0, head="flatten").layers[-3].name == "flatten"
    assert tuple(model.outputs[0].shape[1:]) == (2,)


@pytest.fixture(scope="module")
def test_sets():
    return (shortcut.make_dataset(300, seed=SEED + 1), shortcut.make_dataset(300, swap=True, seed=SEED + 2))


def _trained(marker_rate, seed):
    model = shortcut.build_small_cnn(SEED)
    shortcut.train(
        model, shortcut.make_dataset(N_TRAIN, marker_rate=marker_rate, seed=seed), epochs=EPOCHS, seed=SEED, verbose=0
    )
    return model, wrap_keras_model(
        model, preprocess=shortcut.preprocess, class_names=shortcut.CLASS_NAMES, last_conv_layer="last_conv"
    )


@pytest.fixture(scope="module")
def biased():
    return _trained(0.95, SEED)


@pytest.fixture(scope="module")
def fixed():
    return _trained(0.5, SEED + 3)


def _explained(test_sets):
    return test_sets[1].subset(np.arange(60))


def test_biased_model_reads_the_marker(biased, test_sets):
    model, classifier = biased
    test, swapped = test_sets
    assert shortcut.accuracy(model, test) >= 0.85
    assert shortcut.accuracy(model, swapped) <= 0.3
    guided = shortcut.marker_shares(classifier, _explained(test_sets), method="guided_gradcam").mean()
    cam = shortcut.marker_shares(classifier, _explained(test_sets)).mean()
    assert guided >= 0.3 and cam >= 2 * UNIFORM


def test_fixed_model_reads_the_shapes(fixed, test_sets):
    model, classifier = fixed
    test, swapped = test_sets
    assert shortcut.accuracy(model, test) >= 0.85 and shortcut.accuracy(model, swapped) >= 0.85
    assert shortcut.marker_shares(classifier, _explained(test_sets)).mean() <= UNIFORM
    assert shortcut.marker_shares(classifier, _explained(test_sets), method="guided_gradcam").mean() <= 0.05


def test_alpha_depends_on_the_image_with_a_dense_head(biased, test_sets):
    _, classifier = biased
    alphas = np.stack([grad_cam(classifier, image, "striped square").weights for image in test_sets[0].images[:6]])
    assert np.corrcoef(alphas)[np.triu_indices(6, k=1)].min() < 0.99


def test_marker_share_exercise_accepts_the_reference_and_diagnoses_pooling(biased, test_sets):
    from helpers.exercises import check_marker_share

    _, classifier = biased
    maps = np.stack([grad_cam(classifier, image).map for image in test_sets[1].images[:5]])

    def reference(maps, box):
        return float(np.mean([metrics.pointing_game_energy(m, box) for m in maps]))

    def pooled(maps, box):
        x0, y0, x1, y1 = box
        return float(maps[:, y0:y1, x0:x1].sum() / maps.sum())

    passed = check_marker_share(reference, maps=maps, box=shortcut.MARKER_BOX, quiet=True)  # + EfficientNet-Lite0
    assert passed.passed and sum("real model" in description for description, _ in passed.cases) == 2
    result = check_marker_share(pooled, quiet=True, real_model=False)
    assert not result.passed and "ALL maps" in result.message


def test_marker_share_exercise_wrong_answers_are_diagnosed():
    from helpers.exercises import check_marker_share

    def per_map(maps, box):
        return [metrics.pointing_game_energy(m, box) for m in maps]

    def raw_mass(maps, box):
        x0, y0, x1, y1 = box
        return float(np.mean([m[y0:y1, x0:x1].sum() for m in maps]))

    def swapped_xy(maps, box):
        x0, y0, x1, y1 = box
        return float(np.mean([m[x0:x1, y0:y1].sum() / m.sum() if m.sum() > 0 else 0.0 for m in maps]))

    for wrong, words in ((per_map, "one share per map"), (raw_mass, "not its SHARE"), (swapped_xy, "swapped")):
        result = check_marker_share(wrong, quiet=True, real_model=False)
        assert not result.passed and words in " ".join(result.message.split()), result.message


def test_marker_share_exercise_accepts_percent_with_a_note():
    from helpers.exercises import check_marker_share

    def percent(maps, box):
        return 100 * float(np.mean([metrics.pointing_game_energy(m, box) for m in maps]))

    result = check_marker_share(percent, quiet=True, real_model=False)
    assert result.passed and any("percent" in note for note in result.notes)

"""Cascading randomisation: it changes what it should, and never damages the model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import gap_dense_model
from helpers import wrap_keras_model
from helpers.graph.layers import flat_layers
from helpers.sanity import (
    METHODS,
    SCORES,
    Randomizer,
    cascading_randomization,
    randomized_layers,
    score_table,
    weight_groups,
    weights_fingerprint,
)


def _snapshot(model):
    return [variable.numpy().copy() for layer in flat_layers(model) for variable in layer.weights]


def _assert_identical(model, snapshot):
    now = _snapshot(model)
    assert len(now) == len(snapshot)
    for a, b in zip(now, snapshot):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_weight_groups_of_lite0_go_from_the_top_down(lite0):
    names = [name for name, _ in weight_groups(lite0.model)]
    assert names[:4] == ["predictions", "top", "block7a", "block6d"]
    assert names[-3:] == ["block2a", "block1a", "stem"]
    assert len(names) == 19
    layers = [layer.name for layer in weight_groups(lite0.model, by="layer")[0][1]]
    assert layers == ["predictions"]


def test_randomized_layers_changes_only_the_top_and_restores_bit_for_bit():
    model = gap_dense_model(0)
    before, fingerprint = _snapshot(model), weights_fingerprint(model)
    with randomized_layers(model, 1, seed=0) as names:
        assert names == ["predictions"]
        assert not np.array_equal(model.get_layer("predictions").get_weights()[0], before[-2])
        # the conv layers below are untouched
        np.testing.assert_array_equal(model.get_layer("conv2").get_weights()[0], before[2])
        assert weights_fingerprint(model) != fingerprint
    _assert_identical(model, before)
    assert weights_fingerprint(model) == fingerprint


def test_weights_are_restored_when_the_block_raises():
    model = gap_dense_model(1)
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom"), randomized_layers(model, 3, seed=5):
        raise RuntimeError("boom")
    _assert_identical(model, before)


def test_only_the_affected_layers_are_copied_and_randomisation_is_seeded(lite0):
    model = lite0.model
    groups = weight_groups(model)
    trained = model.get_layer("top_conv").get_weights()[0].copy()
    randomizer = Randomizer(model, seed=7)
    try:
        randomizer.randomize_to(2)  # predictions, top
        expected = sum(v.numpy().nbytes for _, layers in groups[:2] for layer in layers for v in layer.weights)
        assert randomizer.saved_bytes == expected
        first = model.get_layer("top_conv").get_weights()[0].copy()
        assert not np.array_equal(first, trained)
        # random values with the trained tensor's spread
        assert first.std() == pytest.approx(trained.std(), rel=0.05)
    finally:
        randomizer.restore()
    assert randomizer.saved_bytes == 0
    # same seed, same random weights, whether reached in one go or step by step
    with randomized_layers(model, 2, seed=7):
        np.testing.assert_array_equal(model.get_layer("top_conv").get_weights()[0], first)
    randomizer = Randomizer(model, seed=7)
    try:
        randomizer.randomize_to(1)
        randomizer.randomize_to(2)
        np.testing.assert_array_equal(model.get_layer("top_conv").get_weights()[0], first)
        with pytest.raises(ValueError, match="restore"):
            randomizer.randomize_to(1)
    finally:
        randomizer.restore()


def test_batch_norm_statistics_are_kept_and_trainable_weights_keep_their_scale(lite0):
    layer = lite0.model.get_layer("top_bn")
    moving_before = [v.numpy().copy() for v in layer.weights if not v.trainable]
    gamma_before = layer.weights[0].numpy().copy()
    with randomized_layers(lite0.model, 2, seed=0):
        for before, variable in zip(moving_before, [v for v in layer.weights if not v.trainable]):
            np.testing.assert_array_equal(variable.numpy(), before)
        gamma = layer.weights[0].numpy()
        assert not np.array_equal(gamma, gamma_before)
        assert gamma.mean() == pytest.approx(
            gamma_before.mean(), abs=3 * gamma_before.std() / np.sqrt(gamma.size) + 1e-6
        )
        assert gamma.std() == pytest.approx(gamma_before.std(), rel=0.1)


def test_cascade_on_a_small_model_scores_and_restores(random_image):
    model = gap_dense_model(2)
    classifier = wrap_keras_model(model)
    before = _snapshot(model)
    steps = cascading_randomization(classifier, random_image, 0, layer="conv2", progress=False)
    _assert_identical(model, before)
    assert [s.depth for s in steps] == [0, 1, 2, 3]
    assert [s.group for s in steps] == ["none", "predictions", "conv2", "conv1"]
    for method in METHODS:
        assert set(steps[0].scores[method]) == set(SCORES)
        np.testing.assert_allclose(score_table(steps, method, "spearman_abs")[0], 1.0)
        np.testing.assert_allclose(score_table(steps, method, "ssim")[0], 1.0)


def test_cascade_restores_weights_after_an_error(monkeypatch, random_image):
    import helpers.explain as methods

    model = gap_dense_model(3)
    classifier = wrap_keras_model(model)
    before = _snapshot(model)
    real_explain, calls = methods.explain_classes, []

    def failing_explain(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return real_explain(*args, **kwargs)

    monkeypatch.setattr(methods, "explain_classes", failing_explain)
    with pytest.raises(RuntimeError, match="interrupted"):
        cascading_randomization(classifier, random_image, 0, layer="conv2", progress=False)
    _assert_identical(model, before)


def test_sanity_notebook_cascade_leaves_lite0_identical(lite0, cat_dog):
    """What notebook 06 runs: the full cascade on cat_dog. The model is bit-for-bit the same after."""
    before, fingerprint = _snapshot(lite0.model), weights_fingerprint(lite0.model)
    logits_before = lite0.logits(np.zeros((1, 224, 224, 3)))
    steps = cascading_randomization(lite0, cat_dog, "bull mastiff", seed=0, progress=False)
    _assert_identical(lite0.model, before)
    assert weights_fingerprint(lite0.model) == fingerprint
    np.testing.assert_array_equal(lite0.logits(np.zeros((1, 224, 224, 3))), logits_before)
    assert len(steps) == 20
    # Adebayo et al.: guided backprop hardly changes when the logits are randomised, Grad-CAM does
    gb = score_table(steps, "guided_backprop", "spearman_abs")
    cam = score_table(steps, "gradcam", "spearman_abs")
    assert gb[1] > 0.9 and cam[1] < 0.7
    assert gb[-1] < gb[1]


def test_large_weights_are_backed_up_on_disk_and_restored_bit_for_bit(monkeypatch):
    """VGG16-sized layers: the copy goes to a temporary file, the random values come in slices."""
    import keras

    from helpers import sanity
    from helpers.models import variables

    monkeypatch.setattr(variables, "SPILL_BYTES", 1000)  # make every kernel here "large"
    monkeypatch.setattr(variables, "CHUNK_BYTES", 4096)  # and fill it in several slices
    keras.utils.set_random_seed(4)
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, name="block1_conv")(image)
    x = keras.layers.Flatten(name="block2_flatten")(x)
    model = keras.Model(image, keras.layers.Dense(40, name="block2_fc")(x))
    before = weights_fingerprint(model)
    kernel = model.get_layer("block2_fc").kernel
    original = np.array(kernel.numpy())
    randomizer = sanity.Randomizer(model, seed=1)
    randomizer.randomize_to(len(randomizer.groups))
    spill = randomizer.backup.folder
    assert list(spill.glob("*.raw")), "large weights must be backed up on disk"
    changed = kernel.numpy()
    assert not np.allclose(changed, original)
    assert changed.mean() == pytest.approx(original.mean(), abs=0.01)
    assert changed.std() == pytest.approx(original.std(), rel=0.1)
    assert randomizer.saved_bytes < original.nbytes
    randomizer.restore()
    assert weights_fingerprint(model) == before and not spill.exists()

"""The method registry: one calling convention, one Explanation type, one place to add a method."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from conftest import gap_dense_model
from helpers import OptionError, wrap_keras_model
from helpers.explain import (
    REGISTRY,
    Method,
    cam_explanation,
    explain_classes,
    get_method,
    grad_cam,
    grad_cam_plus_plus,
    guided_backprop,
    guided_grad_cam,
    methods_of_kind,
)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_method_has_the_one_calling_convention(name):
    parameters = inspect.signature(REGISTRY[name].function).parameters
    assert list(parameters)[:3] == ["classifier", "image", "target"]
    assert parameters["target"].default is None
    for keyword in ("layer", "score"):
        assert parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY, (name, keyword)
    assert parameters["layer"].default is None


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_method_returns_what_its_entry_says(name, random_image):
    classifier = wrap_keras_model(gap_dense_model(1))
    method = REGISTRY[name]
    options = {"progress": False} if name == "score_cam" else {}
    result = method.function(classifier, random_image, 2, **options)
    assert result.method == name and result.kind == method.kind and result.class_index == 2
    assert result.map.shape == ((16, 16) if method.kind == "heatmap" else (16, 16, 3))
    assert (result.layer == "conv2") == method.needs_layer  # guided backprop and saliency use no layer
    assert np.isfinite(result.map).all()


def test_explain_classes_agrees_with_each_method_alone(random_image):
    classifier = wrap_keras_model(gap_dense_model(2))
    one_pass = [name for name, m in REGISTRY.items() if m.one_pass]
    assert one_pass == ["gradcam", "counterfactual", "gradcam_plus_plus", "guided_backprop", "guided_gradcam"]
    together = explain_classes(classifier, random_image, [1, 3], methods=one_pass)
    for k, index in enumerate((1, 3)):
        assert list(together[k]) == one_pass
        for name in one_pass:
            alone = REGISTRY[name].function(classifier, random_image, index)
            np.testing.assert_allclose(together[k][name].map, alone.map, rtol=1e-5, atol=1e-7)
            assert together[k][name].kind == alone.kind


def test_guided_grad_cam_is_guided_backprop_times_grad_cam(random_image):
    classifier = wrap_keras_model(gap_dense_model(3))
    composed = guided_grad_cam(classifier, random_image, 0)
    expected = guided_backprop(classifier, random_image, 0).map * grad_cam(classifier, random_image, 0).map[..., None]
    np.testing.assert_allclose(composed.map, expected, rtol=1e-5, atol=1e-7)


def test_methods_needing_their_own_passes_are_refused_by_explain_classes(random_image):
    classifier = wrap_keras_model(gap_dense_model(0))
    with pytest.raises(OptionError, match="score_cam.*needs passes of its own.*score_cam"):
        explain_classes(classifier, random_image, 0, methods=("gradcam", "score_cam"))
    with pytest.raises(OptionError, match="unknown method 'gradcampp'.*gradcam_plus_plus"):
        get_method("gradcampp")


def test_kinds():
    assert methods_of_kind("heatmap") == ("gradcam", "counterfactual", "gradcam_plus_plus", "score_cam")
    assert methods_of_kind("gradient") == ("guided_backprop", "guided_gradcam", "saliency")


def test_adding_a_method_is_one_function_and_one_entry(monkeypatch, random_image, capsys, tmp_path):
    """A new CAM (here: every channel weighted 1, i.e. the plain channel sum) reaches every reader."""
    from helpers import cli
    from helpers.widgets import Explorer

    def uniform_weights(activations, gradients):
        return np.ones(activations.shape[-1])

    def uniform_cam(classifier, image, target=None, *, layer=None, score="logit"):
        return explain_classes(classifier, image, target, layer=layer, score=score, methods=("uniform_cam",))[0][
            "uniform_cam"
        ]

    entry = Method("uniform_cam", uniform_cam, "Channel sum", "heatmap", True, channel_weights=uniform_weights)
    monkeypatch.setitem(REGISTRY, "uniform_cam", entry)
    classifier = wrap_keras_model(gap_dense_model(4))
    result = uniform_cam(classifier, random_image, 1)
    activations = explain_classes(classifier, random_image, 1)[0]["gradcam"]  # same layer, same pass
    assert result.kind == "heatmap" and result.layer == activations.layer
    np.testing.assert_array_equal(result.weights, np.ones(8, np.float32))
    # the widgets offer it, with its title
    explorer = Explorer(classifier, random_image, top_k=2, methods=("gradcam", "uniform_cam"))
    assert [label for label, _ in explorer.method_picker.options] == ["Grad-CAM", "Channel sum"]
    # the CLI offers it
    monkeypatch.setattr(cli, "_load_model", lambda name: classifier)
    np.save(tmp_path / "x.npy", random_image)
    assert "uniform-cam" in cli._method_names()


def test_a_cam_from_any_weights_is_relu_of_the_weighted_sum():
    classifier = wrap_keras_model(gap_dense_model(0))
    activations = np.zeros((2, 2, 8), np.float32)
    activations[0, 0, 0], activations[1, 1, 1] = 2.0, 3.0
    weights = np.zeros(8)
    weights[0], weights[1] = 1.0, -1.0  # cell (0, 0): +2, cell (1, 1): -3, so only (0, 0) survives the ReLU
    logits = np.zeros(4)
    result = cam_explanation("x", classifier, "conv2", 0, logits, activations, weights)
    np.testing.assert_array_equal(result.coarse, [[1.0, 0.0], [0.0, 0.0]])
    assert result.probability == pytest.approx(0.25) and result.kind == "heatmap"


def test_grad_cam_plus_plus_has_the_common_calling_convention(random_image):
    classifier = wrap_keras_model(gap_dense_model(5))
    assert grad_cam_plus_plus(classifier, random_image, 1, layer="conv1").layer == "conv1"

"""Keras internals stay in helpers/keras_compat.py, and a Keras without them still works (the fallbacks)."""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import HelpersError, feature_and_logits_model, keras_compat
from helpers.models import vgg16

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
PYPROJECT = HELPERS.parent / "pyproject.toml"
PRIVATE = re.compile(r"keras\.src|\._run_through_graph|\._deferred_initialize|\._initializer\b")


def test_private_keras_apis_are_used_in_the_compat_module_only():
    offenders = [
        f"{path.relative_to(HELPERS.parent)}:{number}: {line.strip()}"
        for path in sorted(HELPERS.rglob("*.py"))
        if path.name != "keras_compat.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert not offenders, "Keras internals outside helpers/keras_compat.py:\n" + "\n".join(offenders)


def test_the_compat_module_names_the_pinned_keras_and_the_pinned_keras_has_the_internals():
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    assert keras_compat.PINNED_KERAS in dependencies
    assert keras_compat.LEAN_BUILD_AVAILABLE, keras_compat.MISSING_LEAN_BUILD_INTERNALS
    assert keras_compat.GRAPH_WALK_AVAILABLE


def small_model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(image, keras.layers.Dense(3, name="predictions")(x), name="small")


def test_build_without_allocating_leaves_the_values_to_the_caller():
    model = keras_compat.build_without_allocating(small_model)
    for variable in model.weights:
        keras_compat.initialize_deferred(variable, lambda shape, dtype: np.full(shape, 0.5, dtype))
    assert all((np.asarray(v) == 0.5).all() for v in model.weights)
    # Keras must not initialise them again, with its own random values, on the next stateless scope's exit.
    with keras.StatelessScope():
        pass
    assert all((np.asarray(v) == 0.5).all() for v in model.weights)


def test_build_without_allocating_notices_variables_that_do_not_wait():
    """A Keras whose variables get their values at once: LeanBuildUnavailable, which build_vgg16 catches."""
    built = small_model()
    with pytest.raises(keras_compat.LeanBuildUnavailable, match=r"Keras .* lacks deferred variables"):
        keras_compat.build_without_allocating(lambda: built)


def test_without_the_internals_the_compat_functions_say_what_to_install(monkeypatch):
    monkeypatch.setattr(keras_compat, "LEAN_BUILD_AVAILABLE", False)
    monkeypatch.setattr(keras_compat, "GRAPH_WALK_AVAILABLE", False)
    with pytest.raises(HelpersError, match=re.escape(keras_compat.PINNED_KERAS)):
        keras_compat.build_without_allocating(small_model)
    model = small_model()
    assert not keras_compat.walks_graph(model)
    with pytest.raises(keras_compat.KerasVersionError, match="_run_through_graph"):
        keras_compat.run_through_graph(model, model.inputs, lambda op: op)


# ---- the VGG16 fallback: plain keras.applications.VGG16, then the same values


def _logits_and_fingerprint(model):
    from helpers.sanity import weights_fingerprint

    x = vgg16.preprocess_vgg16(np.random.default_rng(5).uniform(0, 255, (1, 224, 224, 3)))
    return np.asarray(model(x)), weights_fingerprint(model)


def test_vgg16_falls_back_to_the_ordinary_build_with_one_warning(monkeypatch):
    """Random weights (no file): the same seed gives the same weights, so the same logits, either way."""
    lean_logits, lean_weights = _logits_and_fingerprint(vgg16.build_vgg16(seed=3))
    monkeypatch.setattr(keras_compat, "LEAN_BUILD_AVAILABLE", False)
    monkeypatch.setattr(keras_compat, "MISSING_LEAN_BUILD_INTERNALS", ("Variable._deferred_initialize()",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = vgg16.build_vgg16(seed=3)
    [warning] = [w for w in caught if issubclass(w.category, keras_compat.KerasInternalsWarning)]
    assert warning.category is vgg16.FallbackBuildWarning and issubclass(warning.category, UserWarning)
    message = str(warning.message)
    assert f"Keras {keras.__version__} lacks Variable._deferred_initialize()" in message
    assert f"peaks higher ({vgg16.FALLBACK_PEAK} instead of {vgg16.LEAN_PEAK}" in message
    assert keras_compat.PINNED_KERAS in message
    assert model.count_params() == 138_357_544
    logits, weights = _logits_and_fingerprint(model)
    assert weights == lean_weights
    np.testing.assert_array_equal(logits, lean_logits)


@pytest.mark.slow
def test_vgg16_fallback_loads_a_weights_file_of_the_real_size(tmp_path, monkeypatch):
    """Internals found wanting only when building (LeanBuildUnavailable): the file's weights all the same."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from helpers import load_model

    source = vgg16.build_vgg16(seed=4)
    path = tmp_path / "vgg16.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    source_logits, source_weights = _logits_and_fingerprint(source)
    del source

    def wanting(build_fn):
        raise keras_compat.LeanBuildUnavailable(keras_compat.missing("deferred variables (Variable._initializer)"))

    monkeypatch.setattr(keras_compat, "build_without_allocating", wanting)
    monkeypatch.setenv(vgg16.WEIGHTS_ENV, str(path))
    with pytest.warns(vgg16.FallbackBuildWarning, match=r"lacks deferred variables .* loading it peaks higher"):
        classifier = load_model("vgg16")
    logits, weights = _logits_and_fingerprint(classifier.model)
    assert weights == source_weights
    np.testing.assert_array_equal(logits, source_logits)


# ---- the split's fallback: the public two-output model where there is one, else a clear error


def _nested(outer: str):
    keras.utils.set_random_seed(1)
    image = keras.Input((8, 8, 3), name="inner_image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="inner_conv")(image)
    inner = keras.Model(image, keras.layers.Conv2D(5, 3, name="inner_last")(x), name="inner")
    head = [keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(3, name="predictions")]
    if outer == "sequential":
        return keras.Sequential([keras.Input((8, 8, 3)), inner, *head], name="outer")
    photo = keras.Input((8, 8, 3), name="photo")
    x = keras.layers.Rescaling(0.5, name="scale")(photo)
    x = keras.layers.Conv2D(3, 1, name="outer_conv")(inner(x))
    for layer in head:
        x = layer(x)
    return keras.Model(photo, x, name="outer")


@pytest.mark.parametrize(
    ("build", "layer"),
    [
        (small_model, "conv"),  # a plain functional model
        (lambda: _nested("functional"), "outer_conv"),  # the layer at the top, a nested model elsewhere
        (lambda: _nested("sequential"), "inner_last"),  # a Sequential walks its layers publicly
    ],
    ids=["functional", "nested-elsewhere", "sequential-of-functional"],
)
def test_split_without_the_graph_walk_gives_the_same_features_and_logits(monkeypatch, build, layer):
    model = build()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    walked = [np.asarray(t) for t in feature_and_logits_model(model, layer)(x)]
    monkeypatch.setattr(keras_compat, "GRAPH_WALK_AVAILABLE", False)
    public = [np.asarray(t) for t in feature_and_logits_model(model, layer)(x)]
    for a, b in zip(public, walked):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(public[1], np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_split_without_the_graph_walk_refuses_a_layer_inside_a_nested_functional_model(monkeypatch):
    model = _nested("functional")
    monkeypatch.setattr(keras_compat, "GRAPH_WALK_AVAILABLE", False)
    with pytest.raises(keras_compat.KerasVersionError, match=r"inside a model nested in 'outer'.*pyproject.toml"):
        feature_and_logits_model(model, "inner_last")

"""The real-model inputs of the checks: EfficientNet-Lite0 on the sample photos, computed once.

EfficientNet-Lite0 is the offline model, so a verdict is the same on every
machine. Each input is computed the first time a check needs it and kept in
``_real_cache`` (keyed by the ids of the classifier and photo it came from,
which are kept alive with it so that an id is never reused). A check that
cannot get its real inputs (no model weights, no photo) skips that case with
a note instead of failing: :func:`_real_case_or_note`.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

_real_cache: dict = {}


@contextlib.contextmanager
def _quiet_tensorflow_log():
    """TensorFlow's Python warnings off (e.g. "tf.function retracing" after several new layers).

    A check computes its real inputs at layers the notebook has not traced yet; the warning
    would land in the learner's output under the verdict, and it says nothing they can act on.
    """
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _lite0(classifier=None):
    if classifier is not None:
        return classifier
    if "lite0" not in _real_cache:
        from ..models import load_model

        _real_cache["lite0"] = load_model("efficientnet_lite0")
    return _real_cache["lite0"]


def _cached(key, make):
    # Keyed by the objects' ids; the objects are kept in the value so that an id is never reused.
    if key not in _real_cache:
        with _quiet_tensorflow_log():
            _real_cache[key] = make()
    return _real_cache[key][0]


def _chelsea_gradients(classifier=None):
    """``(A, dy/dA)`` for 'tiger cat' on the chelsea photo at the model's last conv layer."""
    classifier = _lite0(classifier)

    def make():
        from ..data import load_sample
        from ..explain import model_input
        from ..explain.gradients import compute

        _, x = model_input(classifier, load_sample("chelsea"))
        index = classifier.class_index("tiger cat")
        raw = compute(classifier.model, x, classifier.last_conv_layer, class_indices=[index])
        return (np.array(raw.activations, np.float32), np.array(raw.activation_gradients[0], np.float32)), classifier

    return _cached(("chelsea_gradients", id(classifier)), make)


def _relu_max_value(layer):
    """The ``max_value`` of a ReLU layer or ReLU activation: None for a plain ReLU, 6.0 for ReLU6."""
    import keras

    if isinstance(layer, keras.layers.ReLU):
        return None if layer.max_value is None else float(layer.max_value)
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    if name == "relu6":
        return 6.0
    if name == "relu":
        return None
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not a ReLU")


def _chelsea_relu_inputs(classifier=None):
    """``(x, upstream, max_value)`` of the model's last activation, a ReLU6 in EfficientNet-Lite0.

    ``x`` is its input, ``upstream`` the 'tiger cat' gradient arriving at its output, and
    ``max_value`` its rule (None for a plain ReLU, 6.0 for ReLU6), read from the layer.
    """
    classifier = _lite0(classifier)

    def make():
        from ..data import load_sample
        from ..explain import model_input
        from ..explain.gradients import compute
        from ..graph.layers import find_layer, flat_layers

        _, x = model_input(classifier, load_sample("chelsea"))
        index = classifier.class_index("tiger cat")
        activation = find_layer(classifier.model, classifier.last_conv_layer)  # EfficientNet-Lite0: top_activation
        layers = flat_layers(classifier.model)
        before = layers[layers.index(activation) - 1]  # the layer that feeds it: top_bn
        inputs = compute(classifier.model, x, before.name, class_indices=[index]).activations
        upstream = compute(classifier.model, x, activation.name, class_indices=[index]).activation_gradients[0]
        found = (np.array(inputs, np.float32), np.array(upstream, np.float32), _relu_max_value(activation))
        return found, classifier

    return _cached(("chelsea_relu", id(classifier)), make)


def _chelsea_guided(classifier=None):
    """``(guided backprop map, Grad-CAM map, Guided Grad-CAM map)`` for 'tiger cat' on chelsea."""
    classifier = _lite0(classifier)

    def make():
        from ..data import load_sample
        from ..explain import explain_classes

        result = explain_classes(classifier, load_sample("chelsea"), ["tiger cat"])[0]
        return (result["guided_backprop"].map, result["gradcam"].map, result["guided_gradcam"].map), classifier

    return _cached(("chelsea_guided", id(classifier)), make)


def _cat_dog_top5(classifier=None, image=None):
    """``(top-5 explanations (Grad-CAM only), photo (h, w), map (h, w))`` on the cat_dog photo."""
    classifier = _lite0(classifier)

    def make():
        from ..data import load_sample
        from ..explain import explain_classes

        photo = load_sample("cat_dog") if image is None else image
        explanations = explain_classes(classifier, photo, top_k=5, guided=False)
        return (explanations, photo.shape[:2], classifier.input_size), (classifier, image)

    return _cached(("cat_dog_top5", id(classifier), id(image)), make)


def _cat_dog_box(animal: str, photo_size, map_size) -> tuple[int, int, int, int]:
    """The box around ``animal`` ("dog" or "cat") of the cat_dog photo, scaled to the map's cells."""
    from ..data import BOXES

    (photo_h, photo_w), (map_h, map_w) = photo_size, map_size
    x0, y0, x1, y1 = BOXES[animal]
    return (
        round(x0 * map_w / photo_w),
        round(y0 * map_h / photo_h),
        round(x1 * map_w / photo_w),
        round(y1 * map_h / photo_h),
    )


def _cat_dog_deletion_curve(classifier=None, image=None, steps: int = 20):
    """``(fractions, scores)`` of the deletion curve of Grad-CAM for 'bull mastiff' on cat_dog (notebook 07)."""
    classifier = _lite0(classifier)

    def make():
        from .. import metrics
        from ..data import load_sample
        from ..explain import explain_classes, model_input

        photo = load_sample("cat_dog") if image is None else image
        resized, _ = model_input(classifier, photo)
        cam = explain_classes(classifier, photo, ["bull mastiff"], guided=False)[0]["gradcam"].map
        curve = metrics.deletion_curve(classifier, resized, cam, "bull mastiff", steps=steps, seed=0)
        return (np.asarray(curve.fractions, np.float64), np.asarray(curve.scores, np.float64)), (classifier, image)

    return _cached(("cat_dog_deletion", id(classifier), id(image), steps), make)


def _real_case_or_note(make_case, what: str):
    """``(case, None)``, or ``(None, note)`` when the real inputs cannot be had here."""
    try:
        return make_case(), None
    except Exception as exc:
        return None, (
            f"Note: the real-model case ({what}) was skipped: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        )

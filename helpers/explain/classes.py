"""Several methods for several classes from one traced pass (what the widgets and figures use)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..classifier import as_classifier
from ..errors import ClassIndexError, OptionError
from . import gradients as _gradients
from .base import ClassifierLike, Explanation, cam_explanation, checked_layer, gradient_explanation, model_input
from .guided import compose_guided_grad_cam
from .registry import METHODS, get_method


def explain_classes(
    classifier: ClassifierLike,
    image: np.ndarray,
    targets: int | str | Sequence[int | str] | None = None,
    *,
    top_k: int | None = None,
    layer: str | None = None,
    guided: bool = True,
    score: str = "logit",
    methods: Sequence[str] | None = None,
    allow_unverified_layers: bool = False,
) -> list[dict[str, Explanation]]:
    """Every one-pass method for several classes from one forward pass.

    Args:
        classifier: a Classifier or keras.Model.
        image: RGB photo (H, W, 3), 0-255.
        targets: class indices or names; or None with ``top_k``.
        top_k: explain the K most likely classes (chosen inside the same pass).
        layer: conv layer name; default ``classifier.last_conv_layer``.
        guided: with the default ``methods``, also compute guided backprop and Guided Grad-CAM.
        score: ``"logit"`` (default, as in the Grad-CAM paper) or ``"softmax"``.
        methods: registry names to compute, each with ``Method.one_pass`` (Grad-CAM,
            counterfactual, Grad-CAM++, guided backprop, Guided Grad-CAM); default
            :data:`METHODS` (without the guided two when ``guided=False``).
        allow_unverified_layers: let guided backprop run through ``Lambda`` layers, layers
            with their own ``call`` and bare ops, which it refuses by default because it
            cannot see whether they hold a non-ReLU activation.

    Returns:
        A list, one dict per class, mapping method name to :class:`Explanation`.

    Raises:
        OptionError: both ``targets`` and ``top_k``, an unknown ``score``, or a method
            that needs passes of its own (Score-CAM, saliency: call them directly).
        LayerError: ``layer`` is not a conv layer of the model (``''`` included).
        UnsupportedActivationError: guided methods on a model guided backprop cannot explain.
    """
    classifier = as_classifier(classifier)
    _gradients.check_score(score)
    wanted = _methods(methods, guided)
    if targets is not None and top_k is not None:
        raise OptionError(
            f"give either targets ({targets!r}) or top_k ({top_k!r}), not both: targets explains "
            "those classes, top_k the K most likely ones."
        )
    layer = checked_layer(classifier, layer)
    if targets is None and top_k is None:
        top_k = 1
    if top_k is not None:
        top_k = _check_top_k(top_k, classifier.num_classes)
        indices = None
    else:
        targets = targets if isinstance(targets, (list, tuple, np.ndarray)) else [targets]
        indices = [classifier.class_index(t) for t in targets]
    _, x = model_input(classifier, image)
    result = _gradients.compute(
        classifier.model,
        x,
        layer,
        class_indices=indices,
        top_k=top_k,
        guided=any(get_method(m).guided for m in wanted),
        score=score,
        allow_unverified_layers=allow_unverified_layers,
    )
    explanations = []
    for k, index in enumerate(result.class_indices):
        done: dict[str, Explanation] = {}

        def get(name, k=k, index=index, done=done):
            if name not in done:
                if name == "guided_backprop":
                    gradient = result.input_gradients[k]
                    done[name] = gradient_explanation(name, classifier, index, result.logits, gradient)
                elif name == "guided_gradcam":
                    done[name] = compose_guided_grad_cam(get("guided_backprop"), get("gradcam"))
                else:
                    weights = get_method(name).channel_weights(result.activations, result.activation_gradients[k])
                    done[name] = cam_explanation(
                        name, classifier, layer, index, result.logits, result.activations, weights
                    )
            return done[name]

        explanations.append({name: get(name) for name in wanted})
    return explanations


def _methods(methods, guided: bool) -> tuple[str, ...]:
    if methods is None:
        return METHODS if guided else tuple(m for m in METHODS if not get_method(m).guided)
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    for name in methods:
        if not get_method(name).one_pass:
            raise OptionError(
                f"explain_classes computes methods from one traced pass; {name!r} needs passes of its own: "
                f"call helpers.explain.{get_method(name).function.__name__}(...) for it."
            )
    if not methods:
        raise OptionError("methods is empty: name at least one method.")
    return methods


def _check_top_k(top_k, num_classes: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= min(10, num_classes):
        raise ClassIndexError(f"top_k must be an int from 1 to {min(10, num_classes)}, not {top_k!r}.")
    return int(top_k)

"""The public methods. One calling convention for all of them::

    method(classifier, image, target=None, *, layer=None, ...) -> Explanation

``classifier`` is a :class:`~helpers.models.Classifier` (or a bare ``keras.Model``),
``image`` an RGB photo of any size (H, W, 3; values 0-255), ``target`` a class
index or name (default: the top-1 class). The photo is resized whole to the
model's input size, so every map lines up with the whole photo as the model
saw it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from ..errors import ImageError, OptionError
from ..imagenet import softmax as _softmax
from ..models.wrap import as_classifier
from . import gradients as _gradients
from .layers import find_layer
from .maps import grad_cam_map, upsample

if TYPE_CHECKING:
    import keras

    from ..models.classifier import Classifier

METHODS = ("gradcam", "counterfactual", "guided_backprop", "guided_gradcam")

#: What every method takes as its first argument: a Classifier, or a bare Keras model.
ClassifierLike: TypeAlias = "Classifier | keras.Model"
#: A class, by index or by name (``"tiger cat"``); None means the top-1 class.
Target: TypeAlias = "int | str | None"


@dataclass(frozen=True)
class Explanation:
    """What one method says about one class of one image.

    Attributes:
        method: one of ``METHODS``.
        class_index, class_name: the class explained.
        probability: softmax probability of that class; ``logit`` its score.
        map: the picture at the model's input size (H, W):
            ``gradcam``/``counterfactual``: (H, W) in [0, 1];
            ``guided_backprop``: (H, W, 3) raw gradients, RGB order;
            ``guided_gradcam``: (H, W, 3) guided gradients times Grad-CAM.
        coarse: the CAM at the layer's resolution (h, w) in [0, 1] (None for guided backprop).
        weights: the channel weights alpha_k (None for guided backprop).
        layer: the conv layer used (None for guided backprop).
        empty: nothing in the CAM was positive, so ``map`` is all zeros.
    """

    method: str
    class_index: int
    class_name: str
    probability: float
    logit: float
    map: np.ndarray
    coarse: np.ndarray | None = None
    weights: np.ndarray | None = None
    layer: str | None = None
    empty: bool = False


def model_input(classifier: ClassifierLike, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(resized photo (H, W, 3) float32 0-255, preprocessed batch (1, H, W, 3))``.

    The image is checked by :func:`helpers.data.check_image_array`: a model with
    its own preprocessing takes a photo, RGB 0-255 (a [0, 1] float image, an
    already-preprocessed one or a 16-bit one is refused with an ImageError that
    says how to convert it); a bare keras.Model without preprocessing takes its
    input values as they are, so only their shape and finiteness are checked.
    """
    from ..data import check_image_array, resize_for_model

    classifier = as_classifier(classifier)
    photo = classifier.takes_photos
    image = check_image_array(image, photo=photo)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ImageError(
            f"expected one RGB image of shape (height, width, 3), got shape {image.shape}; "
            "load photos with helpers.load_image(path)."
        )
    resized = resize_for_model(image, classifier.input_size, photo=photo)
    return resized, np.asarray(classifier.preprocess(resized[None]), dtype=np.float32)


def explain_classes(
    classifier: ClassifierLike,
    image: np.ndarray,
    targets: int | str | Sequence[int | str] | None = None,
    *,
    top_k: int | None = None,
    layer: str | None = None,
    guided: bool = True,
    score: str = "logit",
    allow_unverified_layers: bool = False,
) -> list[dict[str, Explanation]]:
    """Every method for several classes from one forward pass.

    Args:
        classifier: a Classifier or keras.Model.
        image: RGB photo (H, W, 3), 0-255.
        targets: class indices or names; or None with ``top_k``.
        top_k: explain the K most likely classes (chosen inside the same pass).
        layer: conv layer name; default ``classifier.last_conv_layer``.
        guided: also compute guided backprop and Guided Grad-CAM.
        score: ``"logit"`` (default, as in the Grad-CAM paper) or ``"softmax"``.
        allow_unverified_layers: let guided backprop run through ``Lambda`` layers, layers
            with their own ``call`` and bare ops, which it refuses by default because it
            cannot see whether they hold a non-ReLU activation.

    Returns:
        A list, one dict per class, mapping method name to :class:`Explanation`.

    Raises:
        OptionError: both ``targets`` and ``top_k``, or an unknown ``score``.
        LayerError: ``layer`` is not a conv layer of the model (``''`` included).
        UnsupportedActivationError: ``guided`` on a model guided backprop cannot explain.
    """
    classifier = as_classifier(classifier)
    _gradients.check_score(score)
    if targets is not None and top_k is not None:
        raise OptionError(
            f"give either targets ({targets!r}) or top_k ({top_k!r}), not both: targets explains "
            "those classes, top_k the K most likely ones."
        )
    layer = classifier.last_conv_layer if layer is None else layer
    find_layer(classifier.model, layer)  # clear error before any work
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
        guided=guided,
        score=score,
        allow_unverified_layers=allow_unverified_layers,
    )
    probabilities = _softmax(result.logits)
    size = classifier.input_size
    explanations = []
    for k, index in enumerate(result.class_indices):
        common = {
            "class_index": int(index),
            "class_name": classifier.pretty_name(int(index)),
            "probability": float(probabilities[index]),
            "logit": float(result.logits[index]),
        }
        per_method = {}
        for method, counterfactual in (("gradcam", False), ("counterfactual", True)):
            weights, coarse, empty = grad_cam_map(
                result.activations, result.activation_gradients[k], counterfactual=counterfactual
            )
            per_method[method] = Explanation(
                method=method,
                map=upsample(coarse, size),
                coarse=coarse,
                weights=weights,
                layer=layer,
                empty=empty,
                **common,
            )
        if guided:
            gradient = _rgb_gradient(classifier, result.input_gradients[k])
            cam = per_method["gradcam"]
            per_method["guided_backprop"] = Explanation(
                method="guided_backprop", map=gradient, empty=not gradient.any(), **common
            )
            per_method["guided_gradcam"] = Explanation(
                method="guided_gradcam",
                map=gradient * cam.map[..., None],
                coarse=cam.coarse,
                weights=cam.weights,
                layer=layer,
                empty=cam.empty,
                **common,
            )
        explanations.append(per_method)
    return explanations


def grad_cam(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
) -> Explanation:
    """Grad-CAM: where in the image the evidence for ``target`` is.

    ``L = ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of
    ``dy/dA^k``, normalised to [0, 1] and upsampled bilinearly to the input size.

    Args:
        score: ``"logit"`` (default) differentiates the pre-softmax score y^c, as
            the paper does: it depends on class c's evidence alone. ``"softmax"``
            differentiates p^c = softmax(y)^c, whose gradient is
            ``p^c (dy^c - sum_j p^j dy^j)``: it also rewards evidence *against*
            competing classes and vanishes when p^c is near 0 or 1.

    Warning:
        An all-zero map (``empty=True``) means no region raised the score; it is
        returned as zeros, never NaN.
    """
    return explain_classes(classifier, image, _targets(target), layer=layer, guided=False, score=score)[0]["gradcam"]


def counterfactual(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
) -> Explanation:
    """Counterfactual Grad-CAM: regions whose removal would *raise* confidence in ``target``.

    Same as :func:`grad_cam` with the gradients negated: ``alpha_k = mean(-dy/dA^k)``.
    """
    return explain_classes(classifier, image, _targets(target), layer=layer, guided=False, score=score)[0][
        "counterfactual"
    ]


def guided_backprop(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    allow_unverified_layers: bool = False,
) -> Explanation:
    """Guided backpropagation: dy^c/dx with the guided ReLU rule; (H, W, 3), RGB order.

    Warning:
        Guided backprop is known to be nearly class-blind and to pass the
        sanity checks poorly (Adebayo et al. 2018): it shows image edges more
        than model reasoning. Combine it with Grad-CAM (:func:`guided_grad_cam`).

    Args:
        allow_unverified_layers: run even through ``Lambda`` layers, layers with their own
            ``call`` and bare ops (``keras.ops.*`` in the graph). They are refused by default:
            a ``Lambda(keras.activations.silu)`` would be passed through unchanged and the
            picture would be wrong without a word. Pass True only if they hold no activation
            other than ReLU.

    ``empty`` is True when the whole gradient is zero (nothing reaches the pixels).

    Raises:
        UnsupportedActivationError: the model uses activations other than ReLU/ReLU6.
        UnverifiedLayerError: the model holds layers guided backprop cannot look inside.
    """
    return explain_classes(classifier, image, _targets(target), allow_unverified_layers=allow_unverified_layers)[0][
        "guided_backprop"
    ]


def guided_grad_cam(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    allow_unverified_layers: bool = False,
) -> Explanation:
    """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map.

    High-resolution like guided backprop, class-discriminative like Grad-CAM.
    Computed from one forward pass: the Grad-CAM weights use plain gradients,
    the pixel detail guided ones. ``allow_unverified_layers``: see :func:`guided_backprop`.
    """
    return explain_classes(
        classifier, image, _targets(target), layer=layer, allow_unverified_layers=allow_unverified_layers
    )[0]["guided_gradcam"]


def saliency(classifier: ClassifierLike, image: np.ndarray, target: Target = None) -> Explanation:
    """Plain gradients dy^c/dx (Simonyan et al. 2014): (H, W, 3), RGB order.

    What guided backprop starts from: ordinary backprop through every ReLU.
    Works with any activation. Noisy, because negative and positive
    contributions flow back alike.
    """
    classifier = as_classifier(classifier)
    index = classifier.class_index(target) if target is not None else None
    _, x = model_input(classifier, image)
    result = _gradients.compute(
        classifier.model,
        x,
        classifier.last_conv_layer,
        class_indices=None if index is None else [index],
        top_k=1 if index is None else None,
        plain_inputs=True,
    )
    index = int(result.class_indices[0])
    gradient = _rgb_gradient(classifier, result.input_gradients[0])
    probabilities = _softmax(result.logits)
    return Explanation(
        method="saliency",
        class_index=index,
        class_name=classifier.pretty_name(index),
        probability=float(probabilities[index]),
        logit=float(result.logits[index]),
        map=gradient,
        empty=not gradient.any(),
    )


def _rgb_gradient(classifier, gradient: np.ndarray) -> np.ndarray:
    """A gradient w.r.t. the model input as an (H, W, 3) float32 picture in RGB order.

    BGR models' channels are flipped back. A 1-channel (grayscale) model's gradient is
    repeated on the three channels: it is the gradient w.r.t. the gray value the
    ``preprocess`` made of the photo, drawn in gray.
    """
    if classifier.input_is_bgr:
        gradient = gradient[..., ::-1]
    if gradient.shape[-1] == 1:
        gradient = np.repeat(gradient, 3, axis=-1)
    return np.ascontiguousarray(gradient, dtype=np.float32)


def _targets(target):
    return None if target is None else [target]


def _check_top_k(top_k, num_classes: int) -> int:
    from ..errors import ClassIndexError

    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= min(10, num_classes):
        raise ClassIndexError(f"top_k must be an int from 1 to {min(10, num_classes)}, not {top_k!r}.")
    return int(top_k)

"""What every method shares: the calling convention, the photo's way in, and the one result type.

Every method is called the same way::

    method(classifier, image, target=None, *, layer=None, ...) -> Explanation

``classifier`` is a :class:`~helpers.models.Classifier` (or a bare ``keras.Model``),
``image`` an RGB photo of any size (H, W, 3; values 0-255), ``target`` a class
index or name (default: the top-1 class). The photo is resized whole to the
model's input size, so every map lines up with the whole photo as the model
saw it. Methods that do not use ``layer`` (guided backprop, saliency) accept it
and say so in their docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from ..classifier import as_classifier
from ..errors import ImageError
from ..graph.forward import softmax
from ..graph.layers import default_layer, find_layer
from . import gradients as _gradients
from .maps import normalize_map, upsample, weighted_sum

if TYPE_CHECKING:
    import keras

    from ..classifier import Classifier

#: What every method takes as its first argument: a Classifier, or a bare Keras model.
ClassifierLike: TypeAlias = "Classifier | keras.Model"
#: A class, by index or by name (``"tiger cat"``); None means the top-1 class.
Target: TypeAlias = "int | str | None"

#: The two kinds of picture a method gives (``Explanation.kind``).
HEATMAP = "heatmap"  # (H, W) in [0, 1]: blended over the photo
GRADIENT = "gradient"  # (H, W, 3) signed values in input space: drawn as a gradient image
KINDS = (HEATMAP, GRADIENT)


@dataclass(frozen=True)
class Explanation:
    """What one method says about one class of one image.

    Attributes:
        method: the registry name (see :data:`helpers.explain.METHODS`).
        kind: ``"heatmap"``: ``map`` is (H, W) in [0, 1] (the CAMs);
            ``"gradient"``: ``map`` is (H, W, 3), signed, RGB order (guided
            backprop, Guided Grad-CAM, saliency).
        class_index, class_name: the class explained.
        probability: softmax probability of that class; ``logit`` its score.
        map: the picture at the model's input size (see ``kind``).
        coarse: the CAM at the layer's resolution (h, w) in [0, 1] (None without a layer).
        weights: the channel weights (None without a layer).
        layer: the conv layer used (None for methods that use none).
        empty: nothing was positive (CAM) or nonzero (gradient), so ``map`` is all zeros.
    """

    method: str
    kind: str
    class_index: int
    class_name: str
    probability: float
    logit: float
    map: np.ndarray
    coarse: np.ndarray | None = None
    weights: np.ndarray | None = None
    layer: str | None = None
    empty: bool = False


def explanation(method: str, kind: str, classifier, index: int, logits: np.ndarray, picture: np.ndarray, **extra):
    """The one place an :class:`Explanation` is made: class name and probability from the logits."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    index = int(index)
    return Explanation(
        method=method,
        kind=kind,
        class_index=index,
        class_name=classifier.pretty_name(index),
        probability=float(softmax(logits)[index]),
        logit=float(logits[index]),
        map=picture,
        **extra,
    )


def cam_explanation(method: str, classifier, layer: str, index: int, logits, activations, weights) -> Explanation:
    """A class activation map ``ReLU(sum_k w_k A^k)`` from any channel weights ``w``, as an Explanation."""
    coarse, empty = normalize_map(weighted_sum(activations, weights))
    return explanation(
        method,
        HEATMAP,
        classifier,
        index,
        logits,
        upsample(coarse, classifier.input_size),
        coarse=coarse,
        weights=np.asarray(weights, np.float32),
        layer=layer,
        empty=empty,
    )


def gradient_explanation(method: str, classifier, index: int, logits, gradient: np.ndarray, **extra) -> Explanation:
    """A gradient picture w.r.t. the input (model input order) as an Explanation, in RGB order."""
    picture = rgb_gradient(classifier, gradient)
    extra.setdefault("empty", not picture.any())
    return explanation(method, GRADIENT, classifier, index, logits, picture, **extra)


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


def checked_layer(classifier, layer: str | None) -> str:
    """``layer``, or the classifier's default conv layer; a clear LayerError before any work."""
    layer = classifier.last_conv_layer if layer is None else layer
    if layer is None:
        return default_layer(classifier.model)  # raises the LayerError that says there is no conv layer
    find_layer(classifier.model, layer)
    return layer


def one_pass(
    classifier: ClassifierLike, image, target: Target, layer: str | None, *, needs_layer: bool = True, **options
):
    """One traced pass for one class: ``(classifier, layer, x, class index, Gradients)``.

    ``needs_layer=False`` (gradient methods) asks for no feature map: ``layer`` is ignored and
    returned as None, and the model needs no conv layer.
    """
    classifier = as_classifier(classifier)
    layer = checked_layer(classifier, layer) if needs_layer else None
    _, x = model_input(classifier, image)
    if target is None:
        result = _gradients.compute(classifier.model, x, layer, top_k=1, **options)
    else:
        result = _gradients.compute(
            classifier.model, x, layer, class_indices=[classifier.class_index(target)], **options
        )
    return classifier, layer, x, int(result.class_indices[0]), result


def rgb_gradient(classifier, gradient: np.ndarray) -> np.ndarray:
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


@dataclass(frozen=True)
class LayerGradients:
    """A conv layer's feature map and the class score's gradient there, for one image.

    Attributes:
        activations: ``A``, shape ``(h, w, K)``.
        gradients: ``dy^c/dA``, shape ``(h, w, K)`` (plain backprop).
        class_index: the class ``c``.
        layer: the layer's name.
        logits: the model's scores, ``(num_classes,)``.
    """

    activations: np.ndarray
    gradients: np.ndarray
    class_index: int
    layer: str
    logits: np.ndarray


def activations_and_gradients(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
) -> LayerGradients:
    """``A`` and ``dy^c/dA`` at ``layer``: what every CAM is computed from, to inspect by hand.

    Args: as :func:`helpers.explain.grad_cam`.

    Returns:
        A :class:`LayerGradients`; ``gradients.mean(axis=(0, 1))`` are Grad-CAM's weights.
    """
    _, layer, _, index, result = one_pass(classifier, image, target, layer, score=score)
    return LayerGradients(
        activations=result.activations,
        gradients=result.activation_gradients[0],
        class_index=index,
        layer=layer,
        logits=result.logits,
    )

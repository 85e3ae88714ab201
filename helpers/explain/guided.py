"""Gradient pictures: saliency, guided backpropagation, and Guided Grad-CAM composed from two methods.

Guided Grad-CAM is not a method of its own: it is guided backprop (fine detail,
nearly class-blind) times the upsampled Grad-CAM map (coarse, class-discriminative),
as :func:`compose_guided_grad_cam` shows.
"""

from __future__ import annotations

import numpy as np

from .base import ClassifierLike, Explanation, Target, cam_explanation, gradient_explanation, one_pass
from .gradcam import grad_cam_weights


def saliency(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
) -> Explanation:
    """Plain gradients dy^c/dx (Simonyan et al. 2014): (H, W, 3), RGB order.

    What guided backprop starts from: ordinary backprop through every ReLU.
    Works with any activation. Noisy, because negative and positive
    contributions flow back alike. ``layer`` is accepted for the common
    calling convention and ignored: saliency needs no conv layer.

    Returns:
        An Explanation of kind ``"gradient"``.
    """
    return _input_gradient("saliency", classifier, image, target, score, plain_inputs=True)


def guided_backprop(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
    allow_unverified_layers: bool = False,
) -> Explanation:
    """Guided backpropagation: dy^c/dx with the guided ReLU rule; (H, W, 3), RGB order.

    Warning:
        Guided backprop is known to be nearly class-blind and to fail the
        sanity checks (Adebayo et al. 2018): it shows image edges more than
        model reasoning. Combine it with Grad-CAM (:func:`guided_grad_cam`).

    Args:
        layer: accepted for the common calling convention and ignored: guided
            backprop needs no conv layer.
        score: ``"logit"`` (default) or ``"softmax"``, as :func:`helpers.explain.grad_cam`.
        allow_unverified_layers: run even through ``Lambda`` layers, layers with their own
            ``call`` and bare ops (``keras.ops.*`` in the graph). They are refused by default:
            a ``Lambda(keras.activations.silu)`` would be passed through unchanged and the
            picture would be wrong without a word. Pass True only if they hold no activation
            other than ReLU.

    Returns:
        An Explanation of kind ``"gradient"``; ``empty`` is True when the whole
        gradient is zero (nothing reaches the pixels).

    Raises:
        UnsupportedActivationError: the model uses activations other than ReLU/ReLU6.
        UnverifiedLayerError: the model holds layers guided backprop cannot look inside.
    """
    return _input_gradient(
        "guided_backprop",
        classifier,
        image,
        target,
        score,
        guided=True,
        allow_unverified_layers=allow_unverified_layers,
    )


def guided_grad_cam(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
    allow_unverified_layers: bool = False,
) -> Explanation:
    """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map.

    High-resolution like guided backprop, class-discriminative like Grad-CAM.
    Computed from one forward pass: the Grad-CAM weights use plain gradients,
    the pixel detail guided ones. Arguments as :func:`guided_backprop`, with
    ``layer`` the Grad-CAM layer (default ``classifier.last_conv_layer``).

    Returns:
        An Explanation of kind ``"gradient"`` whose ``coarse``, ``weights`` and
        ``layer`` are Grad-CAM's.
    """
    classifier, layer, _, index, result = one_pass(
        classifier, image, target, layer, score=score, guided=True, allow_unverified_layers=allow_unverified_layers
    )
    weights = grad_cam_weights(result.activations, result.activation_gradients[0])
    cam = cam_explanation("gradcam", classifier, layer, index, result.logits, result.activations, weights)
    guided = gradient_explanation("guided_backprop", classifier, index, result.logits, result.input_gradients[0])
    return compose_guided_grad_cam(guided, cam)


def compose_guided_grad_cam(guided: Explanation, cam: Explanation) -> Explanation:
    """Guided Grad-CAM from a guided-backprop and a Grad-CAM Explanation of the same class.

    Raises:
        ValueError: the two explain different classes, or are not of those kinds.
    """
    if guided.class_index != cam.class_index or guided.kind != "gradient" or cam.kind != "heatmap":
        raise ValueError(
            "compose_guided_grad_cam needs guided backprop and Grad-CAM of one class, got "
            f"{guided.method} of class {guided.class_index} and {cam.method} of class {cam.class_index}."
        )
    return Explanation(
        method="guided_gradcam",
        kind="gradient",
        class_index=guided.class_index,
        class_name=guided.class_name,
        probability=guided.probability,
        logit=guided.logit,
        map=guided.map * cam.map[..., None],
        coarse=cam.coarse,
        weights=cam.weights,
        layer=cam.layer,
        empty=cam.empty,
    )


def _input_gradient(method, classifier, image, target, score, **options) -> Explanation:
    classifier, _, _, index, result = one_pass(
        classifier, image, target, None, needs_layer=False, score=score, **options
    )
    return gradient_explanation(method, classifier, index, result.logits, result.input_gradients[0])

r"""Grad-CAM (Selvaraju et al. 2017) and its counterfactual: channel weights from mean gradients.

Notation: :math:`A^k` is channel k of the feature map, :math:`y^c` the score of class c.

.. math::

    \alpha_k^c = \frac{1}{Z}\sum_{ij} \frac{\partial y^c}{\partial A^k_{ij}},
    \qquad L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big)

The counterfactual map (the paper's "Counterfactual Explanations") negates the gradients: regions
whose removal would *raise* the score of class c.
"""

from __future__ import annotations

import numpy as np

from .base import ClassifierLike, Explanation, Target, cam_explanation, one_pass
from .maps import channel_weights


def grad_cam_weights(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """alpha_k: the spatial mean of ``dy/dA^k``. ``(h, w, K)`` twice -> ``(K,)``; ``activations`` unused."""
    return channel_weights(gradients)


def counterfactual_weights(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """The spatial mean of ``-dy/dA^k``: evidence *against* the class."""
    return channel_weights(-np.asarray(gradients))


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
        classifier: a Classifier or keras.Model.
        image: RGB photo (H, W, 3), 0-255, any size.
        target: class index or name; None for the top-1 class.
        layer: conv layer name; default ``classifier.last_conv_layer``.
        score: ``"logit"`` (default) differentiates the pre-softmax score y^c, as
            the paper does: it depends on class c's evidence alone. ``"softmax"``
            differentiates p^c = softmax(y)^c, whose gradient is
            ``p^c (dy^c - sum_j p^j dy^j)``: it also rewards evidence *against*
            competing classes and vanishes when p^c is near 0 or 1.

    Returns:
        An Explanation of kind ``"heatmap"``.

    Warning:
        An all-zero map (``empty=True``) means no region raised the score; it is
        returned as zeros, never NaN.
    """
    return _cam("gradcam", grad_cam_weights, classifier, image, target, layer, score)


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
    return _cam("counterfactual", counterfactual_weights, classifier, image, target, layer, score)


def _cam(method, weights_of, classifier, image, target, layer, score) -> Explanation:
    classifier, layer, _, index, result = one_pass(classifier, image, target, layer, score=score)
    weights = weights_of(result.activations, result.activation_gradients[0])
    return cam_explanation(method, classifier, layer, index, result.logits, result.activations, weights)

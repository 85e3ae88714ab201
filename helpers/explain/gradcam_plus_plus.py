r"""Grad-CAM++ (Chattopadhay et al. 2018): a weighted mean of the *positive* gradients.

Same mechanism as Grad-CAM (:mod:`helpers.explain.gradcam`), other channel weights.
"""

from __future__ import annotations

import numpy as np

from .base import ClassifierLike, Explanation, Target, cam_explanation, one_pass


def grad_cam_plus_plus_weights(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    r"""Grad-CAM++'s channel weights from ``A`` and ``g = dy^c/dA``, both ``(h, w, K)`` -> ``(K,)``.

    Chattopadhay et al. (2018) explain the exponential score :math:`S^c = e^{y^c}`.
    For a network that is piecewise linear in :math:`A` (ReLU), its higher
    derivatives are powers of the first: :math:`\partial^n S^c/\partial (A^k_{ij})^n
    = e^{y^c} g_{ij}^n` with :math:`g = \partial y^c/\partial A^k`. The
    pixel weights (their eq. 10)

    .. math::

        \alpha^{kc}_{ij} = \frac{\partial^2 S^c / (\partial A^k_{ij})^2}
            {2\,\partial^2 S^c / (\partial A^k_{ij})^2
             + \sum_{ab} A^k_{ab}\, \partial^3 S^c / (\partial A^k_{ij})^3}
          = \frac{g_{ij}^2}{2 g_{ij}^2 + \sum_{ab} A^k_{ab}\, g_{ij}^3}

    (the factor :math:`e^{y^c}` cancels; :math:`\alpha = 0` where the
    denominator is 0), and the channel weights

    .. math::  w^c_k = \sum_{ij} \alpha^{kc}_{ij}\, \mathrm{ReLU}(g_{ij})

    (the positive factor :math:`e^{y^c}` of :math:`\partial S^c/\partial A` is
    dropped: the map is normalised by its maximum anyway). This is the
    paper's formula; the authors' code also divides each channel's
    :math:`\alpha` by its sum, which this function does not.

    Example (global average pooling + Dense, ``Z = h w``): :math:`g_{ij} =
    v_{kc}/Z` everywhere, so :math:`w_k = v_{kc} / (2 + \bar A^k v_{kc})` for
    :math:`v_{kc} > 0` (:math:`\bar A^k` the channel mean) and 0 otherwise.
    """
    a = np.asarray(activations, np.float64)
    g = np.asarray(gradients, np.float64)
    if a.shape != g.shape or a.ndim != 3:
        raise ValueError(f"activations and gradients must both be (h, w, K), got {a.shape} and {g.shape}")
    g2 = g * g
    denominator = 2.0 * g2 + a.sum(axis=(0, 1), keepdims=True) * g2 * g
    safe = np.where(denominator != 0.0, denominator, 1.0)
    alpha = np.where(denominator != 0.0, g2 / safe, 0.0)
    return (alpha * np.maximum(g, 0.0)).sum(axis=(0, 1))


def grad_cam_plus_plus(
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "logit",
) -> Explanation:
    """Grad-CAM++: ``ReLU(sum_k w_k A^k)`` with the weights of :func:`grad_cam_plus_plus_weights`.

    Uses the same traced pass as Grad-CAM (one forward and one backward pass
    to the layer). Arguments as :func:`helpers.explain.grad_cam`; ``score="softmax"``
    differentiates the probability instead of the logit (the derivation above
    assumes the logit). Returns an Explanation of kind ``"heatmap"``,
    ``method="gradcam_plus_plus"``.
    """
    classifier, layer, _, index, result = one_pass(classifier, image, target, layer, score=score)
    weights = grad_cam_plus_plus_weights(result.activations, result.activation_gradients[0])
    return cam_explanation("gradcam_plus_plus", classifier, layer, index, result.logits, result.activations, weights)

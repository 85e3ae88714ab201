r"""Other class activation maps, for comparison with Grad-CAM; and Grad-CAM at several depths.

Every CAM is a weighted sum of the feature maps :math:`A^k` of one conv layer,
kept where positive:

.. math::  L^c = \mathrm{ReLU}\Big(\sum_k w_k^c A^k\Big)

The methods differ only in the weights :math:`w_k^c`:

* **Grad-CAM** (Selvaraju et al. 2017, :func:`helpers.grad_cam`): the mean
  gradient, :math:`w_k^c = \frac{1}{Z}\sum_{ij} \partial y^c / \partial A^k_{ij}`.
* **Grad-CAM++** (Chattopadhay et al. 2018, :func:`grad_cam_plus_plus`): a
  weighted mean of the *positive* gradients, with per-pixel weights
  :math:`\alpha` that give small objects as much say as large ones.
* **Score-CAM** (Wang et al. 2020, :func:`score_cam`): no gradients at all;
  the weight of channel k is how much the class probability rises when the
  model sees only the part of the image that channel lights up.

Same calling convention as :mod:`helpers.explain`:
``method(classifier, image, target=None, *, layer=None) -> Explanation``.
"""

from __future__ import annotations

import numpy as np

from .explain.gradients import compute
from .explain.gradients import logits as model_logits
from .explain.layers import feature_map_layers, find_layer
from .explain.maps import normalize_map, upsample, weighted_sum
from .explain.methods import Explanation, model_input
from .imagenet import softmax as _softmax
from .models.wrap import as_classifier


def _forward(classifier, image, target, layer):
    """One traced pass (plain backprop): ``(classifier, layer, x, class index, Gradients)``."""
    classifier = as_classifier(classifier)
    layer = layer or classifier.last_conv_layer
    find_layer(classifier.model, layer)  # clear error before any work
    _, x = model_input(classifier, image)
    if target is None:
        result = compute(classifier.model, x, layer, top_k=1)
    else:
        result = compute(classifier.model, x, layer, class_indices=[classifier.class_index(target)])
    return classifier, layer, x, int(result.class_indices[0]), result


def _explanation(method, classifier, layer, index, logits, weights, raw) -> Explanation:
    coarse, empty = normalize_map(raw)
    return Explanation(
        method=method,
        class_index=index,
        class_name=classifier.pretty_name(index),
        probability=float(_softmax(logits)[index]),
        logit=float(logits[index]),
        map=upsample(coarse, classifier.input_size),
        coarse=coarse,
        weights=np.asarray(weights, np.float32),
        layer=layer,
        empty=empty,
    )


# --------------------------------------------------------------------------
# Grad-CAM++
# --------------------------------------------------------------------------


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


def grad_cam_plus_plus(classifier, image, target=None, *, layer=None) -> Explanation:
    """Grad-CAM++: ``ReLU(sum_k w_k A^k)`` with the weights of :func:`grad_cam_plus_plus_weights`.

    Uses the same traced pass as Grad-CAM (one forward and one backward pass
    to the layer). ``Explanation.method`` is ``"gradcam_plus_plus"``.
    """
    classifier, layer, _, index, result = _forward(classifier, image, target, layer)
    weights = grad_cam_plus_plus_weights(result.activations, result.activation_gradients[0])
    raw = weighted_sum(result.activations, weights)
    return _explanation("gradcam_plus_plus", classifier, layer, index, result.logits, weights, raw)


# --------------------------------------------------------------------------
# Score-CAM
# --------------------------------------------------------------------------


def channel_masks(activations: np.ndarray, channels, size: tuple[int, int]) -> np.ndarray:
    """Score-CAM's masks: each chosen channel upsampled to ``size`` and min-max scaled to [0, 1].

    Returns ``(N, H, W)`` float32; a constant channel gives an all-zero mask.
    """
    chosen = np.asarray(activations, np.float32)[..., np.asarray(channels, int)]
    if chosen.shape[-1] == 0:
        return np.zeros((0, *size), np.float32)
    upsampled = np.moveaxis(upsample(chosen, size), -1, 0)
    low = upsampled.min(axis=(1, 2), keepdims=True)
    spread = upsampled.max(axis=(1, 2), keepdims=True) - low
    return np.where(spread > 0, (upsampled - low) / np.where(spread > 0, spread, 1.0), 0.0).astype(np.float32)


def score_cam(
    classifier,
    image,
    target=None,
    *,
    layer=None,
    max_channels: int | None = 64,
    batch_size: int = 32,
    progress: bool = True,
) -> Explanation:
    r"""Score-CAM (Wang et al. 2020): channel weights from masked forward passes, no gradients.

    Each channel :math:`A^k` is upsampled to the input size and min-max
    scaled to [0, 1], giving a mask :math:`H^k`. The model sees the input
    multiplied by the mask, :math:`X \circ H^k` (in the model's preprocessed
    space, as in the authors' code: masked-out pixels become 0 there, the
    mean colour for mean-centred inputs). The weight is the rise of the
    class's softmax probability over the fully masked baseline
    :math:`X_b = X \circ 0` (the paper's "channel-wise increase of
    confidence"):

    .. math::

        w_k^c = \mathrm{softmax}\big(f(X \circ H^k)\big)_c
              - \mathrm{softmax}\big(f(X_b)\big)_c,
        \qquad L^c = \mathrm{ReLU}\Big(\sum_k w_k^c A^k\Big)

    Cost: one forward pass per channel. The masked images go through the
    model in batches of ``batch_size`` (with a ``tqdm.auto`` progress bar).

    Args:
        max_channels: keep only the channels with the largest mean activation
            (default 64; None: all). EfficientNet-Lite0's last layer has 1280
            channels, about a minute on a laptop CPU; the strongest 64 carry
            most of the map (a channel that is zero everywhere adds nothing to
            the sum, whatever its weight). The other channels get weight 0.
        batch_size: masked images per forward pass (memory: VGG16 needs
            about 13 MB of activations per image and conv layer width).

    Returns:
        An :class:`~helpers.explain.Explanation` with ``method="score_cam"``;
        ``weights`` has one entry per channel (0 for channels not used).
    """
    from tqdm.auto import tqdm

    classifier, layer, x, index, result = _forward(classifier, image, target, layer)
    activations = result.activations
    strength = activations.mean(axis=(0, 1))
    varying = np.flatnonzero(np.ptp(activations, axis=(0, 1)) > 0)
    ordered = varying[np.argsort(-strength[varying], kind="stable")]
    channels = ordered if max_channels is None else ordered[: int(max_channels)]
    baseline = _softmax(model_logits(classifier.model, np.zeros_like(x)))[0, index]
    probabilities = []
    starts = range(0, len(channels), batch_size)
    for start in tqdm(starts, desc="Score-CAM batches", disable=not progress or len(starts) < 2):
        masks = channel_masks(activations, channels[start : start + batch_size], classifier.input_size)
        batch = x * masks[..., None]
        probabilities.append(_softmax(model_logits(classifier.model, batch))[:, index])
    weights = np.zeros(activations.shape[-1], np.float64)
    if probabilities:
        weights[channels] = np.concatenate(probabilities) - baseline
    raw = weighted_sum(activations, weights)
    return _explanation("score_cam", classifier, layer, index, result.logits, weights, raw)


# --------------------------------------------------------------------------
# Grad-CAM at several depths
# --------------------------------------------------------------------------

_POOLING = ("MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling2D", "InputLayer")


def _map_layers(classifier):
    classifier = as_classifier(classifier)
    return [layer for layer in feature_map_layers(classifier.model) if type(layer).__name__ not in _POOLING]


def stage_layers(classifier) -> list[str]:
    """The last block output (:func:`block_output_layers`) at each spatial resolution, shallow to deep.

    VGG16: ``block1_conv2`` (224x224), ``block2_conv2``, ``block3_conv3``,
    ``block4_conv3``, ``block5_conv3`` (14x14). EfficientNet-Lite0:
    ``block1a_project_bn`` (112x112), ``block2b_add``, ``block3b_add``,
    ``block5c_add``, ``top_activation`` (7x7). The last three are the
    "comparable stages" of VGG16's blocks 3, 4 and 5: each halves the
    resolution of the one before.
    """
    last: dict = {}
    for name in block_output_layers(classifier):
        shape = find_layer(as_classifier(classifier).model, name).output.shape
        last[tuple(shape[1:3])] = name  # later blocks overwrite earlier ones
    return list(last.values())


def block_output_layers(classifier) -> list[str]:
    """The output of every block (the last feature-map layer of each name prefix), shallow to deep.

    EfficientNet-Lite0: ``stem_activation``, ``block1a_project_bn``,
    ``block2a_project_bn``, ``block2b_add``, ... ``top_activation``.
    VGG16: ``block1_conv2`` ... ``block5_conv3``. Good choices for a layer dropdown.
    """
    from .sanity import block_name

    last: dict = {}
    for layer in _map_layers(classifier):
        last[block_name(layer.name)] = layer.name
    return list(last.values())

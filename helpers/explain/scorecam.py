r"""Score-CAM (Wang et al. 2020): channel weights from masked forward passes, no gradients."""

from __future__ import annotations

import numpy as np

from ..graph.forward import logits as model_logits
from ..graph.forward import softmax
from ..progress import progress as show_progress
from . import gradients as _gradients
from .base import ClassifierLike, Explanation, Target, cam_explanation, one_pass
from .maps import upsample


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
    classifier: ClassifierLike,
    image: np.ndarray,
    target: Target = None,
    *,
    layer: str | None = None,
    score: str = "softmax",
    max_channels: int | None = 256,
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
    model in batches of ``batch_size`` (with a progress bar, :func:`helpers.progress.progress`).

    Args:
        classifier, image, target, layer: as :func:`helpers.explain.grad_cam`.
        score: ``"softmax"`` (default, the paper's increase of confidence) or
            ``"logit"`` (the rise of the pre-softmax score instead).
        max_channels: keep only the channels with the largest mean activation
            (default 256; None: all of those that vary over the photo); the others
            get weight 0 (a channel that is zero everywhere adds nothing to the sum,
            whatever its weight). EfficientNet-Lite0's last layer has 1280 channels
            (about 760 vary on the sample photos), VGG16's block5_conv3 512. With 64,
            conclusions can change: on the dog-and-cat photo the 64-channel map spreads
            onto the cat and the 256-channel one does not (notebook 08).
        batch_size: masked images per forward pass (memory: VGG16 needs
            about 13 MB of activations per image and conv layer width).
        progress: show a progress bar while the batches run.

    Returns:
        An Explanation of kind ``"heatmap"``, ``method="score_cam"``;
        ``weights`` has one entry per channel (0 for channels not used).
    """
    score = _gradients.check_score(score)
    classifier, layer, x, index, result = one_pass(classifier, image, target, layer)
    activations = result.activations
    strength = activations.mean(axis=(0, 1))
    varying = np.flatnonzero(np.ptp(activations, axis=(0, 1)) > 0)
    ordered = varying[np.argsort(-strength[varying], kind="stable")]
    channels = ordered if max_channels is None else ordered[: int(max_channels)]

    def class_score(batch):
        values = model_logits(classifier.model, batch)
        return (softmax(values) if score == "softmax" else values)[:, index]

    baseline = class_score(np.zeros_like(x))[0]
    scores = []
    starts = range(0, len(channels), batch_size)
    for start in show_progress(starts, "Score-CAM batches", enabled=progress and len(starts) > 1):
        masks = channel_masks(activations, channels[start : start + batch_size], classifier.input_size)
        scores.append(class_score(x * masks[..., None]))
    weights = np.zeros(activations.shape[-1], np.float64)
    if scores:
        weights[channels] = np.concatenate(scores) - baseline
    return cam_explanation("score_cam", classifier, layer, index, result.logits, activations, weights)

"""Grad-CAM's arithmetic on NumPy arrays: small enough to check by hand.

Notation (Selvaraju et al. 2017): A^k is channel k of the feature map, y^c the
score of class c. Grad-CAM weights each channel by its average gradient and
keeps the positive evidence::

    alpha_k^c = 1/Z * sum_ij  dy^c / dA^k_ij
    L^c       = ReLU( sum_k alpha_k^c A^k )
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import HelpersError


def channel_weights(gradients: np.ndarray) -> np.ndarray:
    """alpha_k: the spatial mean of dy/dA^k. ``(h, w, K)`` -> ``(K,)``."""
    gradients = np.asarray(gradients, dtype=np.float32)
    if gradients.ndim != 3:
        raise ValueError(f"gradients must be (height, width, channels), got shape {gradients.shape}")
    return gradients.mean(axis=(0, 1))


def weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_k alpha_k A^k, before the ReLU. ``(h, w, K)``, ``(K,)`` -> ``(h, w)``."""
    return np.tensordot(np.asarray(activations, np.float32), np.asarray(weights, np.float32), axes=([2], [0]))


def normalize_map(raw: np.ndarray) -> tuple[np.ndarray, bool]:
    """ReLU, then scale to [0, 1] by the maximum; NaN-safe.

    Returns:
        ``(map, empty)``: ``empty`` is True when nothing was positive (an
        all-zero or all-negative map), and the map is then all zeros rather
        than 0/0 = NaN.

    Raises:
        HelpersError: the input holds NaN or infinity (the model itself
            produced non-finite values).
    """
    raw = np.asarray(raw, dtype=np.float32)
    if not np.all(np.isfinite(raw)):
        raise HelpersError(
            "the model produced NaN or infinite values for this image, so no map can be "
            "drawn; check the input (is it RGB 0-255?) and the model's weights."
        )
    positive = np.maximum(raw, 0.0)
    peak = float(positive.max(initial=0.0))
    if peak <= np.finfo(np.float32).tiny:
        return np.zeros_like(positive), True
    return positive / peak, False


def upsample(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a ``(h, w)`` or ``(h, w, C)`` map to ``size`` = (height, width).

    Uses pixel-centre alignment (as ``tf.image.resize``), so the map's cells
    sit over the image regions they summarise. Returns ``(H, W)`` or ``(H, W, C)``.
    """
    height, width = size
    coarse = np.asarray(coarse, np.float32)
    if coarse.ndim == 2:
        return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    # OpenCV resizes at most 128 channels at once, and drops the axis of a single one.
    parts = [
        cv2.resize(
            np.ascontiguousarray(coarse[..., i : i + 128]), (width, height), interpolation=cv2.INTER_LINEAR
        ).reshape(height, width, -1)
        for i in range(0, coarse.shape[-1], 128)
    ]
    return np.concatenate(parts, axis=-1)


def grad_cam_map(activations, gradients, *, counterfactual: bool = False):
    """The whole Grad-CAM computation for one class at conv resolution.

    Args:
        activations: ``A``, shape ``(h, w, K)``.
        gradients: ``dy^c/dA``, shape ``(h, w, K)``.
        counterfactual: use ``-dy^c/dA`` (regions whose removal would raise
            the score of class c; the Grad-CAM paper's "Counterfactual Explanations").

    Returns:
        ``(weights (K,), map (h, w) in [0, 1], empty)``.
    """
    gradients = -np.asarray(gradients) if counterfactual else gradients
    weights = channel_weights(gradients)
    heatmap, empty = normalize_map(weighted_sum(activations, weights))
    return weights, heatmap, empty

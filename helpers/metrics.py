"""Can we trust a saliency map? Small, tested measures for notebooks 06-08.

Every function takes NumPy maps: a 2-D map ``(h, w)`` (Grad-CAM, Score-CAM) or
an RGB map ``(h, w, 3)`` (guided backprop, Guided Grad-CAM), which
:func:`to_2d` reduces to one value per pixel. Boxes are ``(x0, y0, x1, y1)``
in pixels, ``x1``/``y1`` excluded, as in ``tests/conftest.py``.

Four families:

* **Similarity** between two maps (sanity checks, Adebayo et al. 2018):
  :func:`spearman` (rank correlation, signed or on absolute values) and
  :func:`ssim` (structural similarity).
* **Faithfulness** (Petsiuk et al. 2018, RISE): :func:`deletion_curve` and
  :func:`insertion_curve`, each summarised by its area under the curve (AUC).
* **Localization**: :func:`pointing_game_energy` (share of the map's mass
  inside a box; Wang et al. 2020, Score-CAM), :func:`box_from_map` (the
  Grad-CAM paper's box: threshold at 15 % of the maximum, largest connected
  component) and :func:`iou`.
* **Baselines**: :func:`random_map`, a seeded map that knows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .graph.forward import softmax

#: Mean ImageNet colour (RGB, 0-255): the colour a "deleted" pixel takes by default.
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)

#: Threshold of :func:`box_from_map`, as a fraction of the map's maximum (Grad-CAM paper, sec. 4.1).
BOX_THRESHOLD = 0.15


# --------------------------------------------------------------------------
# Maps
# --------------------------------------------------------------------------


def to_2d(saliency: np.ndarray, *, absolute: bool = False) -> np.ndarray:
    """One value per pixel, float64.

    A 2-D map is kept (``abs`` taken if ``absolute``). An RGB map ``(h, w, 3)``
    is summed over its channels: ``sum_c |m_c|`` if ``absolute``, else
    ``sum_c m_c`` (the signed evidence of the pixel).
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.ndim == 3:
        return np.abs(saliency).sum(axis=-1) if absolute else saliency.sum(axis=-1)
    if saliency.ndim != 2:
        raise ValueError(f"a map is (height, width) or (height, width, channels), not shape {saliency.shape}")
    return np.abs(saliency) if absolute else saliency


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A baseline map of i.i.d. uniform values in [0, 1): it ranks pixels at random."""
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def normalize(saliency: np.ndarray, *, absolute: bool = True, percentile: float = 99.0) -> np.ndarray:
    """A 2-D map scaled for comparison: divided by its ``percentile`` of ``|m|`` and clipped.

    Gradient maps have a few extreme pixels; scaling by the maximum would
    squeeze everything else to zero. The result lies in [0, 1] (``absolute``)
    or [-1, 1] (signed). An all-zero map stays all zero.
    """
    flat = to_2d(saliency, absolute=absolute)
    scale = float(np.percentile(np.abs(flat), percentile))
    if scale <= 0.0:
        scale = float(np.abs(flat).max(initial=0.0))
    if scale <= 0.0:
        return np.zeros_like(flat)
    return np.clip(flat / scale, 0.0 if absolute else -1.0, 1.0)


# --------------------------------------------------------------------------
# Similarity between two maps (sanity checks)
# --------------------------------------------------------------------------


def spearman(a: np.ndarray, b: np.ndarray, *, absolute: bool = False) -> float:
    """Spearman rank correlation of two maps' pixels (``scipy.stats.spearmanr``).

    ``absolute=True`` ranks ``|a|`` and ``|b|`` (does the map keep *where*
    the evidence is?), ``absolute=False`` the signed values (also its sign).
    1 means the same ranking, 0 no relation.

    Returns:
        The correlation. A constant map (an empty Grad-CAM, all zeros) ranks
        no pixel above another, so it keeps none of the other map's ranking:
        it scores 0 (``spearmanr`` itself would return NaN with a warning).
    """
    from scipy.stats import spearmanr

    x = to_2d(a, absolute=absolute).ravel()
    y = to_2d(b, absolute=absolute).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {to_2d(a).shape} and {to_2d(b).shape}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def ssim(a: np.ndarray, b: np.ndarray, *, absolute: bool = True) -> float:
    """Structural similarity (``skimage.metrics.structural_similarity``) of two maps.

    Each map goes through :func:`normalize` first (so only its shape counts,
    not its scale), then SSIM runs with ``data_range`` 1 (absolute maps in
    [0, 1]) or 2 (signed maps in [-1, 1]). 1 means identical.
    """
    from skimage.metrics import structural_similarity

    x = normalize(a, absolute=absolute)
    y = normalize(b, absolute=absolute)
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {x.shape} and {y.shape}")
    return float(structural_similarity(x, y, data_range=1.0 if absolute else 2.0))


# --------------------------------------------------------------------------
# Faithfulness: deletion and insertion (RISE)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        fractions: share of pixels removed (deletion) or inserted (insertion), 0 to 1.
        scores: softmax probability of the class at each fraction.
        auc: area under the curve, trapezoid rule over fractions 0..1.
            Deletion: lower is better (the score falls fast). Insertion:
            higher is better (the score rises fast).
        class_index: the class scored.
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: float
    class_index: int


def auc(fractions: np.ndarray, scores: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (``numpy.trapezoid``)."""
    return float(np.trapezoid(np.asarray(scores, np.float64), np.asarray(fractions, np.float64)))


def blur(image: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """A Gaussian blur of an RGB image (``sigma`` in pixels); insertion starts from it."""
    image = np.asarray(image, np.float32)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def pixel_order(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices, most salient first (absolute values summed over channels).

    Ties (an all-zero region of a Grad-CAM map, for instance) are broken in a
    seeded random order rather than row by row, so a flat region is not
    removed from the top of the image down.
    """
    values = to_2d(saliency, absolute=True).ravel()
    tie_break = np.random.default_rng(seed).random(values.size)
    return np.lexsort((tie_break, -values))


def perturbation_batch(image, saliency, *, kind: str, steps: int = 20, substrate=None, seed: int = 0):
    """All images of one curve in one array: ``(fractions (steps+1,), images (steps+1, H, W, 3))``.

    Image ``i`` has the ``round(i / steps * H * W)`` most salient pixels
    replaced by ``substrate`` (deletion) or copied from ``image`` onto
    ``substrate`` (insertion).
    """
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind must be 'deletion' or 'insertion', not {kind!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int, not {steps!r}")
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    if to_2d(saliency).shape != (height, width):
        raise ValueError(
            f"the map is {to_2d(saliency).shape} but the image {(height, width)}: use maps at the "
            "model's input size (Explanation.map) with the resized photo (model_input)."
        )
    substrate = np.broadcast_to(np.asarray(substrate, np.float32), image.shape)
    count = height * width
    order = pixel_order(saliency, seed=seed)
    rank = np.empty(count, np.int64)
    rank[order] = np.arange(count)
    rank = rank.reshape(height, width)
    counts = np.rint(np.linspace(0, count, steps + 1)).astype(np.int64)
    changed = rank[None] < counts[:, None, None]  # (steps+1, H, W): pixels already moved
    start, end = (image, substrate) if kind == "deletion" else (substrate, image)
    images = np.where(changed[..., None], end[None], start[None]).astype(np.float32)
    return counts / count, images


def _substrate(image, baseline):
    image = np.asarray(image, np.float32)
    if isinstance(baseline, str):
        if baseline == "mean":
            return np.broadcast_to(np.asarray(IMAGENET_MEAN_RGB, np.float32), image.shape)
        if baseline == "black":
            return np.zeros_like(image)
        if baseline == "blur":
            return blur(image)
        raise ValueError(f"baseline must be 'mean', 'black', 'blur' or an array, not {baseline!r}")
    return np.broadcast_to(np.asarray(baseline, np.float32), image.shape)


def _curve(classifier, image, saliency, target, *, kind, steps, baseline, seed, batch_size) -> Curve:
    from .classifier import as_classifier

    classifier = as_classifier(classifier)
    image = np.asarray(image, np.float32)
    index = _class_index(classifier, image, target)
    fractions, images = perturbation_batch(
        image, saliency, kind=kind, steps=steps, substrate=_substrate(image, baseline), seed=seed
    )
    logits = classifier.logits(images, batch_size=batch_size).astype(np.float64)
    scores = softmax(logits)[:, index]
    return Curve(kind=kind, fractions=fractions, scores=scores, auc=auc(fractions, scores), class_index=index)


# model -> traced forward pass. Weak keys: a model that is gone takes its trace with it.
def _class_index(classifier, image, target) -> int:
    if target is None:
        return int(np.argmax(classifier.logits(image[None])[0]))
    return classifier.class_index(target)


def deletion_curve(
    classifier,
    image,
    saliency,
    target=None,
    *,
    steps: int = 20,
    baseline="mean",
    seed: int = 0,
    batch_size: int | None = None,
) -> Curve:
    """RISE's deletion curve: remove the most salient pixels first; a faithful map makes the score fall fast.

    At step ``i`` of ``steps`` the ``i/steps`` share of pixels with the
    highest ``|saliency|`` is replaced by the baseline, and the softmax
    probability of ``target`` is recorded. All ``steps + 1`` images go through
    the model as one batch (one call of ``classifier.logits``; ``batch_size``
    splits it if memory is short).

    Args:
        classifier: a Classifier (or keras.Model).
        image: the photo at the model's input size, RGB 0-255 (the first
            return value of ``helpers.explain.model_input``).
        saliency: a map of the same height and width.
        target: class index or name; default the image's top-1 class.
        baseline: what a deleted pixel becomes: ``"mean"`` (the mean ImageNet
            colour, default; it is what "zero" means after the usual
            normalisation, as in RISE), ``"black"``, ``"blur"`` (the blurred
            photo) or an array broadcastable to the image.
        seed: for breaking ties between equal saliency values.

    Returns:
        A :class:`Curve`; its ``auc`` is lower for a more faithful map.
    """
    return _curve(
        classifier,
        image,
        saliency,
        target,
        kind="deletion",
        steps=steps,
        baseline=baseline,
        seed=seed,
        batch_size=batch_size,
    )


def insertion_curve(
    classifier,
    image,
    saliency,
    target=None,
    *,
    steps: int = 20,
    baseline="blur",
    seed: int = 0,
    batch_size: int | None = None,
) -> Curve:
    """RISE's insertion curve: start from a blurred photo and put the most salient pixels back first.

    Same as :func:`deletion_curve` the other way round: step 0 is the
    ``baseline`` (default ``"blur"``, a Gaussian blur with sigma 8 px, see
    :func:`blur`), the last step the photo itself. A faithful map makes the
    score rise fast: its ``auc`` is *higher*.
    """
    return _curve(
        classifier,
        image,
        saliency,
        target,
        kind="insertion",
        steps=steps,
        baseline=baseline,
        seed=seed,
        batch_size=batch_size,
    )


# --------------------------------------------------------------------------
# Localization
# --------------------------------------------------------------------------


def box_mask(shape: tuple[int, int], box, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean ``(h, w)`` mask of the map pixels whose centre lies inside ``box``.

    Args:
        shape: the map's ``(h, w)``.
        box: ``(x0, y0, x1, y1)``, in the coordinates of ``image_size``.
        image_size: ``(height, width)`` of the photo the box was drawn on; the
            map is taken to cover the whole photo (as ``Explanation.map`` does).
            Default: the box is in map pixels.
    """
    height, width = shape
    image_height, image_width = image_size if image_size is not None else shape
    x0, y0, x1, y1 = box
    xs = (np.arange(width) + 0.5) * image_width / width
    ys = (np.arange(height) + 0.5) * image_height / height
    inside_x = (xs >= x0) & (xs < x1)
    inside_y = (ys >= y0) & (ys < y1)
    return inside_y[:, None] & inside_x[None, :]


def pointing_game_energy(saliency: np.ndarray, box, image_size: tuple[int, int] | None = None) -> float:
    """Energy-based pointing game: the share of the map's mass inside ``box``.

    ``sum_(i,j in box) m_ij / sum_ij m_ij`` with ``m = |saliency|`` (summed
    over channels for RGB maps). 1: all the evidence lies in the box; the
    box's share of the image area is what a uniform map scores. An all-zero
    map scores 0.
    """
    mass = to_2d(saliency, absolute=True)
    total = float(mass.sum())
    if total <= 0.0:
        return 0.0
    return float(mass[box_mask(mass.shape, box, image_size)].sum() / total)


def box_area_fraction(shape: tuple[int, int], box, image_size: tuple[int, int] | None = None) -> float:
    """The share of the map's pixels inside ``box``: what a uniform map scores in the pointing game."""
    return float(box_mask(shape, box, image_size).mean())


def box_from_map(saliency: np.ndarray, threshold: float = BOX_THRESHOLD, image_size: tuple[int, int] | None = None):
    """The Grad-CAM paper's localization box: threshold, largest connected component, bounding box.

    Pixels with ``m >= threshold * max(m)`` (``m = |saliency|``) are kept;
    ``scipy.ndimage.label`` finds their 4-connected components; the box
    encloses the largest one.

    Returns:
        ``(x0, y0, x1, y1)`` with ``x1``/``y1`` excluded, in map pixels or,
        with ``image_size = (height, width)``, scaled to the photo; None for
        an all-zero map.
    """
    from scipy import ndimage

    mass = to_2d(saliency, absolute=True)
    peak = float(mass.max(initial=0.0))
    if peak <= 0.0:
        return None
    labels, count = ndimage.label(mass >= threshold * peak)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0  # background
    rows, cols = np.nonzero(labels == int(np.argmax(sizes)))
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    if image_size is None:
        return box
    scale_x = image_size[1] / mass.shape[1]
    scale_y = image_size[0] / mass.shape[0]
    return (round(box[0] * scale_x), round(box[1] * scale_y), round(box[2] * scale_x), round(box[3] * scale_y))


def iou(box_a, box_b) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (0 if either is None or empty)."""
    if box_a is None or box_b is None:
        return 0.0
    ax0, ay0, ax1, ay1 = box_a
    bx0, by0, bx1, by1 = box_b
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0

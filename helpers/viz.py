"""Pictures from maps: NumPy in, NumPy (or Matplotlib axes) out. No TensorFlow here."""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_ALPHA = 0.4
DEFAULT_CMAP = "jet"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An RGB image as uint8: floats are taken as 0-255 and clipped."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def colorize(heatmap: np.ndarray, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """A [0, 1] map as an RGB uint8 picture through a Matplotlib colormap."""
    from matplotlib import colormaps

    heatmap = np.clip(np.nan_to_num(np.asarray(heatmap, np.float32)), 0.0, 1.0)
    return (colormaps[cmap](heatmap)[..., :3] * 255).round().astype(np.uint8)


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = DEFAULT_ALPHA, cmap: str = DEFAULT_CMAP
) -> np.ndarray:
    """Blend a [0, 1] heatmap over an RGB photo: ``(1 - alpha) * photo + alpha * colours``.

    The heatmap is resized bilinearly to the photo (both cover the whole
    photo), so it works for the model-sized image and the original alike.

    Args:
        image: RGB (H, W, 3), 0-255.
        heatmap: (h, w) in [0, 1].
        alpha: 0 shows only the photo, 1 only the heatmap.

    Returns:
        RGB uint8 (H, W, 3).
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    image = to_uint8(image)
    height, width = image.shape[:2]
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.shape != (height, width):
        heatmap = cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(heatmap, cmap).astype(np.float32)
    return to_uint8(blended)


def gradient_image(gradients: np.ndarray) -> np.ndarray:
    """Gradients (H, W, 3) as a viewable RGB image in [0, 1].

    The usual normalisation for guided backprop pictures: standardise, scale
    by 0.1, centre on 0.5 (grey = no gradient), clip. A flat input gives
    plain grey rather than NaN.
    """
    gradients = np.asarray(gradients, np.float32)
    centred = gradients - gradients.mean()
    spread = float(centred.std())
    if spread > 0.0:
        centred = centred / (spread + 1e-5)
    return np.clip(centred * 0.1 + 0.5, 0.0, 1.0)


def gradient_magnitude(gradients: np.ndarray) -> np.ndarray:
    """Per-pixel max-abs over channels, scaled to [0, 1] (a greyscale saliency map)."""
    magnitude = np.abs(np.asarray(gradients, np.float32)).max(axis=-1)
    peak = float(magnitude.max(initial=0.0))
    return magnitude / peak if peak > 0 else magnitude


def show(ax, picture, title: str, *, colorbar_label: str | None = None, cmap: str | None = None, vmin=None, vmax=None):
    """Draw a picture on ``ax`` with a title (and optionally a labelled colour bar)."""
    shown = ax.imshow(picture, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    if colorbar_label is not None:
        bar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(colorbar_label)
    return shown


RELEVANCE_LABEL = "Grad-CAM relevance (0 to 1)"


def colorbar(fig, axes, label: str = RELEVANCE_LABEL, cmap: str = DEFAULT_CMAP):
    """A labelled [0, 1] colour bar for heatmaps drawn on ``axes`` (one Axes or several).

    Heatmaps blended over a photo carry no colour scale of their own; this bar is
    the scale the overlay used (:func:`overlay` maps 0 to the colormap's start, 1 to its end).
    """
    from matplotlib import cm, colors

    mappable = cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=cmap)
    fraction = 0.046 if not isinstance(axes, (list, tuple, np.ndarray)) or np.size(axes) == 1 else 0.02
    bar = fig.colorbar(mappable, ax=axes, fraction=fraction, pad=0.02)
    bar.set_label(label)
    return bar


def draw_box(ax, box, *, label: str | None = None, colour: str = "white", style: str = "-", width: float = 2.0):
    """Outline ``box`` = (x0, y0, x1, y1), in pixels of the picture drawn on ``ax``.

    ``label`` goes to the legend (call ``ax.legend()``). Returns the Rectangle.
    """
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    patch = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linestyle=style, linewidth=width)
    if label is not None:
        patch.set_label(label)
    ax.add_patch(patch)
    return patch


def compact_figures(dpi: int = 80, quality: int = 80) -> None:
    """Show this notebook's Matplotlib figures as JPEG at ``dpi``, to keep the saved .ipynb small.

    A figure of photos and heatmaps weighs up to 3 MB as PNG, at most about 0.2 MB as JPEG, and looks
    the same on screen (figures wider than the page are shrunk by Jupyter anyway). Only the image that is
    displayed changes: ``fig.dpi``, hence "<Figure size ...>" and ``plt.savefig``, stay as they are.
    Outside IPython (scripts, tests) there are no inline figures and nothing happens.
    """
    from IPython import get_ipython

    if get_ipython() is None:
        return
    from matplotlib_inline.config import InlineBackend

    # Set on the inline backend's configuration, not on IPython's formatters: the backend applies it
    # now if it is active, else when pyplot activates it (which would overwrite the formatters).
    config = InlineBackend.instance()
    config.print_figure_kwargs = {**config.print_figure_kwargs, "dpi": dpi, "pil_kwargs": {"quality": quality}}
    config.figure_formats = {"jpeg"}

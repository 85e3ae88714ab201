"""Arrays in: checking that an array is a photo, and model-sized copies of it.

* :func:`check_image_array` -- refuses, with an error that says how to fix it,
  what is not an image a model can take (batches, RGBA, bool masks, ``[0, 1]``
  floats, already-preprocessed values).
* :func:`resize_for_model` -- the whole photo squeezed to the model's input
  size, exactly as ``keras.utils.load_img(path, target_size=...,
  interpolation="bilinear")`` does.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ImageError

_LOAD_HINT = "e.g. from helpers.load_image(path)"


def _array_or_error(image) -> np.ndarray:
    """``np.asarray(image)``, with an ImageError for what NumPy cannot make an array of."""
    try:
        return np.asarray(image)
    except (ValueError, TypeError, OverflowError) as exc:  # ragged lists, odd objects
        raise ImageError(
            f"the image cannot be made into a NumPy array ({exc}): pass an (H, W, 3) array of "
            f"RGB values 0-255, {_LOAD_HINT}."
        ) from exc


def _check_shape(array: np.ndarray) -> None:
    """Refuse anything but a non-empty ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise ImageError(
            f"expected an image of shape (height, width, 3), got {array.shape}. "
            "For a batch, pass each image on its own; for RGBA, load it with load_image() first."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"the image is empty (shape {array.shape}): pass a photo with pixels in it.")


def _check_dtype(array: np.ndarray) -> None:
    """Refuse arrays that do not hold real numbers (bool masks, complex, text, objects)."""
    if array.dtype == np.bool_:
        raise ImageError(
            "the image is a bool array (a mask?), not a photo: pass RGB values 0-255, e.g. mask.astype(np.uint8) * 255."
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ImageError("the image holds complex numbers: pass real RGB values 0-255, e.g. np.abs(image).")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageError(
            f"the image holds {array.dtype} values, not numbers: pass an (H, W, 3) array of "
            f"RGB values 0-255, {_LOAD_HINT}."
        )


def _check_photo_values(array: np.ndarray) -> np.ndarray:
    """Refuse values that are not RGB 0-255 in the ways people get them wrong.

    Returns:
        The array; an integer array as ``uint8`` (its values fit, so nothing is lost).
    """
    low, high = array.min(), array.max()
    kind = "float" if array.dtype.kind == "f" else str(array.dtype)
    if low < 0:
        raise ImageError(
            f"this {kind} image has negative values (down to {float(low):.3g}), so it looks "
            f"already preprocessed: pass the photo before preprocessing, RGB values 0-255, {_LOAD_HINT}."
        )
    if array.dtype.kind == "f" and 0 < high <= 1:
        raise ImageError(
            "this float image has values in [0, 1] (as plt.imread gives): multiply it by 255 "
            "(image * 255) to get the RGB values 0-255 the models expect."
        )
    if high > 255 and array.dtype.kind == "f":
        raise ImageError(
            f"this float image has values up to {float(high):.6g}, above 255: pass RGB values 0-255 "
            "(divide 16-bit data by 257), or load the file with helpers.load_image(path)."
        )
    if high > 255:
        raise ImageError(
            f"this {kind} image has values up to {int(high)}, above 255: convert it to 0-255 first, "
            "e.g. (image // 257).astype(np.uint8) for 16-bit data, or load the file with "
            "helpers.load_image(path), which scales 16-bit images."
        )
    return array if array.dtype.kind == "f" else array.astype(np.uint8, copy=False)


def check_image_array(image: np.typing.ArrayLike, *, photo: bool = True) -> np.ndarray:
    """Check that an array is an image the models can take, with an error that says how to fix it.

    Accepted: ``(H, W, 3)``, ``(H, W)`` or ``(H, W, 1)`` arrays of finite real
    numbers. With ``photo=True`` (the default: what pretrained models and
    their preprocessing expect) the values must also be RGB 0-255:

    * ``uint8``: always fine (an all-black image too);
    * other integer types (``uint16``, ``int64``, ...): fine if every value
      fits 0..255 (e.g. from arithmetic on a uint8 photo); larger values are
      refused rather than guessed at -- :func:`load_image` scales 16-bit files;
    * float: values in 0..255, not all within [0, 1] (that is a
      ``plt.imread`` image: multiply it by 255); an all-zero float image is
      black either way and is fine;
    * negative values are refused: they are an already-preprocessed array;
    * ``bool`` and complex arrays are refused.

    Args:
        image: the array (anything ``np.asarray`` takes).
        photo: check the 0-255 rules above. False for a model of one's own
            without preprocessing, which takes its input values as they are.

    Returns:
        The array (integers with ``photo=True`` become ``uint8``).

    Raises:
        ImageError: the message says what is wrong and what to do.
    """
    array = _array_or_error(image)
    _check_shape(array)
    _check_dtype(array)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ImageError(f"the image holds NaN or infinite values: pass finite RGB values 0-255, {_LOAD_HINT}.")
    if photo:
        return _check_photo_values(array)
    # The models compute in float32: a larger value would become infinity on the way in.
    if array.size and array.dtype.kind in "fiu" and float(np.abs(array).max()) > float(np.finfo(np.float32).max):
        raise ImageError("the image holds values too large for float32 (the models compute in float32): rescale it.")
    return array


def _as_rgb_array(array: np.ndarray) -> np.ndarray:
    """Give a checked ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array three channels."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return array


def _parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """Turn ``224`` or ``(224, 224)`` into ``(height, width)``, checked positive."""
    height, width = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"size must be positive (height, width), got {size!r}")
    return int(height), int(width)


def resize_for_model(image: np.ndarray, size: int | tuple[int, int], *, photo: bool = True) -> np.ndarray:
    """Resize the WHOLE image to the model's input size (no crop).

    For ``uint8`` input this gives exactly the pixels of
    ``keras.utils.load_img(path, target_size=size, interpolation="bilinear")``:
    Pillow's bilinear resize of the full frame, aspect ratio ignored. (Keras's
    default interpolation is "nearest", which aliases badly on big photos.)
    Because nothing is
    cropped, a map computed at the model's size (a Grad-CAM heatmap, a guided
    backprop image) covers the whole photo and can be resized back to the
    photo's original ``(H, W)`` to lie exactly on top of it.

    Args:
        image: ``(H, W, 3)`` (or grayscale ``(H, W)`` / ``(H, W, 1)``) array
            with values 0..255, ``uint8`` or float (see :func:`check_image_array`).
        size: ``(height, width)`` of the model's input, or one int for a square.
        photo: check that the values are RGB 0-255 (:func:`check_image_array`);
            False for a model of one's own that takes other values.

    Returns:
        A ``float32`` array of shape ``(height, width, 3)``, values 0..255, not
        yet preprocessed for any particular model.

    Raises:
        ImageError: the array is not an image (or, with ``photo``, not RGB 0-255).
        ValueError: the size is not positive.
    """
    height, width = _parse_size(size)
    array = _as_rgb_array(check_image_array(image, photo=photo))
    if array.shape[:2] == (height, width):
        return array.astype(np.float32)  # what Pillow's resize to the same size gives: a copy
    if array.dtype == np.uint8:
        # The exact path keras.utils.load_img takes: one RGB resize.
        resized = Image.fromarray(np.ascontiguousarray(array)).resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.float32)
    # Float images: resize each channel as a 32-bit float image so values
    # between integers (and outside 0..255) survive unrounded.
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[:, :, c], dtype=np.float32)).resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(3)
    ]
    return np.stack(channels, axis=2).astype(np.float32)

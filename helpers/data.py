"""Images in: named sample photos, the learner's own files, and model-sized copies.

Three jobs, each with errors a beginner can act on:

* :func:`load_sample` -- the photos the notebooks use. ``"cat_dog"`` (the
  Grad-CAM paper's bull mastiff and tiger cat) is downloaded once, checked
  against a pinned sha256 and cached by :func:`keras.utils.get_file`;
  ``"chelsea"`` (a tabby cat) ships inside scikit-image. :data:`SAMPLES` holds
  each photo's credit and licence.
* :func:`load_image` -- any photo file (or its bytes) as an ``(H, W, 3)``
  ``uint8`` RGB array, whatever its mode (grayscale, alpha, palette, CMYK,
  16-bit, float) and EXIF orientation.
* :func:`resize_for_model` -- the whole photo squeezed to the model's input
  size, exactly as ``keras.utils.load_img(path, target_size=...,
  interpolation="bilinear")`` does.

Offline use: set the environment variable ``GRADCAM_DATA_MIRROR`` to a folder
that holds byte-identical copies of the sample files (e.g. ``cat_dog.jpg``).
The file is then "downloaded" from a ``file://`` URL through the same
``get_file`` call, so the hash check still runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from helpers.errors import DataUnavailableError, ImageError
from helpers.network import socket_timeout

#: Environment variable naming a folder with offline copies of the samples.
MIRROR_ENV = "GRADCAM_DATA_MIRROR"

#: Sub-folder of the Keras cache (``$KERAS_HOME``, default ``~/.keras``).
CACHE_SUBDIR = "helpers_samples"

#: Seconds a stalled connection may stay silent before the download gives up.
DOWNLOAD_TIMEOUT = 10.0

#: Largest image (width x height) :func:`load_image` will decode. A 50
#: megapixel photo already takes 150 MB as RGB; anything bigger is more likely
#: a decompression bomb than a photo worth explaining.
MAX_PIXELS = 50_000_000

#: Smallest side, in pixels, of an image :func:`load_image` accepts.
MIN_SIDE = 8

_SAVE_AS_HINT = "Open it in an image viewer, save it as JPEG or PNG and try again."


class UnknownSampleError(DataUnavailableError, ValueError):
    """The sample name is not in :data:`SAMPLES`.

    It is a :class:`~helpers.errors.DataUnavailableError` (the sample cannot
    be had) and a ``ValueError`` (the caller passed a bad argument), so either
    ``except`` clause catches it.
    """


@dataclass(frozen=True)
class Sample:
    """A named sample photo and where it comes from.

    Attributes:
        name: key in :data:`SAMPLES`, e.g. ``"cat_dog"``.
        description: what the photo shows.
        filename: file name in the cache, the mirror or the providing package.
        url: pinned download URL, or None if the file ships inside a package.
        sha256: hex sha256 of the file's bytes.
        credit: who made it / where it was published.
        licence: the licence it is used under.
    """

    name: str
    description: str
    filename: str
    url: str | None
    sha256: str
    credit: str
    licence: str

    @property
    def credit_line(self) -> str:
        """One line for a figure caption: description, credit and licence."""
        return f"{self.description}. {self.credit}. Licence: {self.licence}."


SAMPLES: dict[str, Sample] = {
    "cat_dog": Sample(
        name="cat_dog",
        description="A bull mastiff and a tiger cat, 640x480",
        filename="cat_dog.jpg",
        url=(
            "https://raw.githubusercontent.com/ramprs/grad-cam/"
            "ea86dc1c57c83bb183d574965f4c6e5dde56bcca/images/cat_dog.jpg"
        ),
        sha256="ec62e965a2699adb4d043c0468817062bc7aa5019358fdf8ececd104d3de36e8",
        credit="Photo from the Grad-CAM paper (Selvaraju et al., 2017), github.com/ramprs/grad-cam",
        licence="BSD (the grad-cam repository's licence)",
    ),
    "chelsea": Sample(
        name="chelsea",
        description="Chelsea, a tabby cat, 451x300",
        filename="chelsea.png",
        url=None,
        # Pinned in scikit-image's own data registry (skimage/data/_registry.py).
        sha256="596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        credit="Photo by Stefan van der Walt, shipped with scikit-image (skimage.data.chelsea)",
        licence="CC0",
    ),
}


# --------------------------------------------------------------------------
# Sample photos
# --------------------------------------------------------------------------


def _get_sample(name: str) -> Sample:
    """Look a sample up by name.

    Args:
        name: a key of :data:`SAMPLES`.

    Returns:
        The sample's record.

    Raises:
        UnknownSampleError: the name is unknown (the message lists valid names).
    """
    try:
        return SAMPLES[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in SAMPLES)
        raise UnknownSampleError(f"unknown sample {name!r}: choose one of {valid}") from None


def _mirror_file(sample: Sample) -> Path | None:
    """Return the sample's file in the offline mirror, if the mirror has it.

    Args:
        sample: the sample to look for.

    Returns:
        The absolute path of the mirrored file, or None if ``GRADCAM_DATA_MIRROR``
        is unset or the folder does not hold the file.
    """
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    # resolve(): a relative mirror (CI uses ../shared/data/images) must become
    # absolute before it can be written as a file:// URL.
    candidate = Path(mirror).expanduser().resolve() / sample.filename
    return candidate if candidate.is_file() else None


def _cache_dir() -> Path:
    """The Keras cache folder to use, read from ``KERAS_HOME`` now.

    Keras reads ``KERAS_HOME`` only once, when it is imported; reading it at
    call time lets a notebook (or a test) redirect the cache afterwards.

    Returns:
        ``$KERAS_HOME`` if set, else ``~/.keras`` (Keras's default), created
        if possible -- get_file silently falls back to ``/tmp/.keras`` for a
        folder that does not exist yet.
    """
    base = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # unwritable: get_file (and _cached_target) fall back to /tmp/.keras
    return base


def _download(sample: Sample, origin: str) -> Path:
    """Fetch ``origin`` into the Keras cache with a hash check and a time limit.

    Args:
        sample: the sample being fetched (file name and sha256).
        origin: the URL to fetch from (``https://`` or ``file://``).

    Returns:
        The path of the verified cached file.

    Raises:
        ValueError: the fetched file's sha256 is wrong (the file is deleted).
        Exception: whatever the download raised (Keras deletes partial files).
    """
    import keras  # imported here so that loading photos does not start TensorFlow

    # urllib has no timeout argument in get_file: a process-wide default is the
    # only way to make a dead network fail in seconds instead of minutes.
    # Keras's progress bar is silenced: for a 120 kB photo it is only noise in notebooks.
    with socket_timeout(DOWNLOAD_TIMEOUT), contextlib.redirect_stdout(io.StringIO()):
        try:
            path = keras.utils.get_file(
                sample.filename,
                origin,
                file_hash=sample.sha256,
                hash_algorithm="sha256",
                cache_subdir=CACHE_SUBDIR,
                cache_dir=str(_cache_dir()),
            )
        except ValueError:
            # get_file raises on a hash mismatch but leaves the bad file in the
            # cache; remove it so nobody mistakes it for the real photo.
            _cached_target(sample).unlink(missing_ok=True)
            raise
    return Path(path)


def _cached_target(sample: Sample) -> Path:
    """Where :func:`keras.utils.get_file` stores the sample.

    Args:
        sample: the sample.

    Returns:
        ``<cache>/helpers_samples/<filename>``, mirroring get_file's rules
        (including its fallback to ``/tmp/.keras`` for an unwritable cache).
    """
    base = _cache_dir()
    if not os.access(base, os.W_OK):
        base = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return base / CACHE_SUBDIR / sample.filename


def sample_path(name: str) -> Path:
    """Local path of a sample photo, downloading it on first use.

    Order of sources: the Keras cache (if its hash is right), then the offline
    mirror ``$GRADCAM_DATA_MIRROR`` (if it holds the file), then the pinned URL.
    Every source goes through the same sha256 check.

    Args:
        name: a key of :data:`SAMPLES`.

    Returns:
        The path of a verified copy of the file. For samples that ship inside
        a package (``"chelsea"``), the path inside that package.

    Raises:
        UnknownSampleError: the name is unknown.
        DataUnavailableError: the file could not be had or its hash is wrong;
            the message says what to do.
    """
    sample = _get_sample(name)
    if sample.url is None:
        return _bundled_path(sample)

    mirrored = _mirror_file(sample)
    origin = mirrored.as_uri() if mirrored is not None else sample.url
    try:
        return _download(sample, origin)
    except ValueError as exc:
        where = f"the mirror copy {mirrored}" if mirrored is not None else sample.url
        raise DataUnavailableError(
            f"the sample {name!r} from {where} does not have the expected sha256 "
            f"{sample.sha256}, so it was rejected ({exc}). Replace it with an exact "
            f"copy of {sample.url}."
        ) from exc
    except Exception as exc:  # get_file re-raises network failures as bare Exception
        mirror = os.environ.get(MIRROR_ENV)
        mirror_note = (
            f"{MIRROR_ENV}={mirror!r} does not hold {sample.filename!r}"
            if mirror
            else f"{MIRROR_ENV} is not set"
        )
        raise DataUnavailableError(
            f"could not download the sample {name!r} from {sample.url} ({exc}), and "
            f"{mirror_note}. Connect to the internet, or download the file elsewhere, "
            f"put it in a folder and set the environment variable {MIRROR_ENV} to that folder."
        ) from exc


def _bundled_path(sample: Sample) -> Path:
    """Path of a sample that ships inside scikit-image.

    Args:
        sample: a sample whose ``url`` is None.

    Returns:
        The file's path in the installed package.

    Raises:
        DataUnavailableError: the package's copy is missing.
    """
    import skimage.data

    path = Path(skimage.data.__file__).resolve().parent / sample.filename
    if not path.is_file():
        raise DataUnavailableError(
            f"scikit-image's copy of {sample.filename!r} is missing from {path.parent}; "
            "reinstall scikit-image (pip install --force-reinstall scikit-image)."
        )
    return path


def load_sample(name: str) -> np.ndarray:
    """Load a named sample photo.

    Args:
        name: a key of :data:`SAMPLES` (``"cat_dog"`` or ``"chelsea"``).

    Returns:
        The photo as an ``(H, W, 3)`` ``uint8`` RGB array.

    Raises:
        UnknownSampleError: the name is unknown.
        DataUnavailableError: the photo could not be had (see :func:`sample_path`).
    """
    sample = _get_sample(name)
    if sample.name == "chelsea":
        import skimage.data

        return np.ascontiguousarray(skimage.data.chelsea(), dtype=np.uint8)
    return load_image(sample_path(name))


# --------------------------------------------------------------------------
# The learner's own images
# --------------------------------------------------------------------------


def _describe(source: str | os.PathLike | bytes) -> str:
    """Name a source in an error message."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"the given data ({len(source)} bytes)"
    return f"{os.fspath(source)!r}"


def _open_source(source) -> tuple[io.BytesIO | Path, str]:
    """Check a source and turn it into something Pillow can open.

    Args:
        source: a path (str or PathLike) or the file's bytes.

    Returns:
        ``(file_or_path, description)`` for :func:`PIL.Image.open` and messages.

    Raises:
        ImageError: wrong type, missing file, a folder, or empty data.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        what = _describe(source)
        if len(source) == 0:
            raise ImageError(f"{what} is empty: there is no image in it. {_SAVE_AS_HINT}")
        return io.BytesIO(bytes(source)), what
    if not isinstance(source, (str, os.PathLike)):
        raise ImageError(
            f"load_image needs a file path or the file's bytes, not {type(source).__name__}. "
            "If you already have a NumPy array, use it directly."
        )
    path = Path(source).expanduser()
    what = _describe(source)
    if not path.exists():
        raise ImageError(f"no such file: {what}. Check the path (current folder: {Path.cwd()}).")
    if path.is_dir():
        raise ImageError(f"{what} is a folder, not an image file. Pass the path of one image.")
    if path.stat().st_size == 0:
        raise ImageError(f"{what} is empty (0 bytes): the download or copy failed. {_SAVE_AS_HINT}")
    return path, what


def _not_an_image_message(fp, what: str) -> str:
    """Explain why Pillow could not identify the data, with a hint for common cases."""
    head = b""
    try:
        if isinstance(fp, io.BytesIO):
            head = fp.getvalue()[:16]
        else:
            with open(fp, "rb") as f:
                head = f.read(16)
    except OSError:
        pass
    if head.startswith(b"\x93NUMPY"):
        hint = "It is a NumPy .npy file: load it with numpy.load() instead."
    elif head.lstrip().startswith((b"<svg", b"<?xml")):
        hint = "SVG drawings are not supported: export it as PNG and try again."
    else:
        hint = _SAVE_AS_HINT
    return f"{what} is not an image file (or not a format Pillow can read). {hint}"


def _open_image(fp, what: str) -> Image.Image:
    """Open, size-check and fully decode an image.

    Args:
        fp: a path or a file object.
        what: the source's description for messages.

    Returns:
        The decoded Pillow image (first frame for animations).

    Raises:
        ImageError: not an image, too large, too small or damaged.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only *warns* between its own limit and twice that; a
            # warning nobody reads does not protect memory, so make it fatal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{what} is too large to load safely ({exc}); the limit is {MAX_PIXELS:,} pixels. "
            "Resize it to a few megapixels and try again."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(_not_an_image_message(fp, what)) from exc
    except PermissionError as exc:
        raise ImageError(f"cannot read {what}: permission denied ({exc}).") from exc
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        # Pillow recognised the format but the header itself is cut short or corrupt.
        raise ImageError(_damaged_message(what, exc)) from exc

    width, height = image.size
    # Checked on the header, before decoding, so a bomb never reaches memory.
    if width * height > MAX_PIXELS:
        image.close()
        raise ImageError(
            f"{what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{MAX_PIXELS:,} pixels (it may be a decompression bomb). "
            "Resize it to a few megapixels and try again."
        )
    if min(width, height) < MIN_SIDE:
        image.close()
        raise ImageError(
            f"{what} is only {width}x{height} pixels; images must be at least "
            f"{MIN_SIDE}x{MIN_SIDE}. Use a larger photo."
        )
    try:
        # Image.open only reads the header; load() decodes every byte, so a
        # truncated or corrupt file fails here rather than deep inside a model.
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        image.close()
        raise ImageError(_damaged_message(what, exc)) from exc
    return image


def _damaged_message(what: str, exc: BaseException) -> str:
    """Message for a file Pillow recognised but could not decode."""
    return (
        f"{what} is damaged or truncated and cannot be decoded ({exc}). "
        f"Download it again, or {_SAVE_AS_HINT[0].lower()}{_SAVE_AS_HINT[1:]}"
    )


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip the image as its EXIF orientation tag says (phone photos)."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        # A malformed EXIF block should not make an otherwise good photo unusable.
        return image


def _integer_bits(image: Image.Image, values: np.ndarray) -> int | None:
    """The bit depth to scale a 16/32-bit integer image by.

    Args:
        image: the Pillow image (mode ``I;16*`` or ``I``).
        values: its pixels as an integer array.

    Returns:
        The number of bits (16 for ``I;16`` and for ``I`` data that fits in
        16 bits, or the TIFF ``BitsPerSample`` tag), or None if the data
        exceeds its declared depth (then the caller stretches min..max).
    """
    if image.mode.startswith("I;16"):
        return 16
    tag = getattr(image, "tag_v2", None)
    bits = tag.get(258) if tag is not None else None
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    # Older Pillow opens 16-bit PNGs as "I": values in 0..65535 mean 16-bit.
    if bits is None and values.min() >= 0 and values.max() <= 0xFFFF:
        bits = 16
    if bits and values.min() >= 0 and values.max() <= (1 << int(bits)) - 1:
        return int(bits)
    return None


def _scale_to_uint8(values: np.ndarray, full_scale: float | None) -> np.ndarray:
    """Map pixel values to 0..255.

    Args:
        values: a 2-D array of one channel.
        full_scale: the value that means white (e.g. 65535), or None to
            stretch the data's own min..max.

    Returns:
        A ``uint8`` array, rounded.
    """
    data = values.astype(np.float64)
    if full_scale is None:
        low, high = float(data.min()), float(data.max())
        data = (data - low) / (high - low) if high > low else np.zeros_like(data)
    else:
        data = data / full_scale
    return np.clip(np.rint(data * 255.0), 0, 255).astype(np.uint8)


def _high_depth_to_rgb(image: Image.Image, what: str) -> np.ndarray:
    """Convert a 16-bit, 32-bit integer or float grayscale image to RGB uint8.

    Pillow's own ``convert("RGB")`` clips these modes at 255 (65535 -> 255 but
    also 300 -> 255), which turns most 16-bit photos white; scaling by the bit
    depth keeps their tones.

    Args:
        image: a Pillow image in mode ``I;16*``, ``I`` or ``F``.
        what: the source's description for messages.

    Returns:
        An ``(H, W, 3)`` ``uint8`` array with three equal channels.

    Raises:
        ImageError: float data with NaN or infinity.
    """
    values = np.asarray(image)
    if image.mode == "F":
        if not np.all(np.isfinite(values)):
            raise ImageError(f"{what} holds NaN or infinite pixel values. {_SAVE_AS_HINT}")
        low, high = float(values.min()), float(values.max())
        # Float images are conventionally 0..1; some tools write 0..255.
        if low >= 0.0 and high <= 1.0:
            full_scale = 1.0
        elif low >= 0.0 and high <= 255.0:
            full_scale = 255.0
        else:
            full_scale = None
    else:
        bits = _integer_bits(image, values)
        full_scale = float((1 << bits) - 1) if bits else None
    gray = _scale_to_uint8(values, full_scale)
    return np.repeat(gray[:, :, None], 3, axis=2)


def _has_transparency(image: Image.Image) -> bool:
    """True if the image has an alpha channel or a transparent palette/colour entry."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _to_rgb(image: Image.Image, what: str) -> np.ndarray:
    """Convert a decoded Pillow image of any supported mode to RGB uint8.

    Transparent pixels are composited on white: a model has no notion of
    "transparent", and white is how the picture looks in a browser.

    Args:
        image: a decoded Pillow image.
        what: the source's description for messages.

    Returns:
        An ``(H, W, 3)`` ``uint8`` array.

    Raises:
        ImageError: the mode cannot be converted.
    """
    if image.mode.startswith("I") or image.mode == "F":
        return _high_depth_to_rgb(image, what)
    try:
        if _has_transparency(image):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
        else:
            rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"{what} uses the pixel mode {image.mode!r}, which cannot be converted to RGB "
            f"({exc}). {_SAVE_AS_HINT}"
        ) from exc
    return np.asarray(rgb, dtype=np.uint8)


def load_image(source: str | os.PathLike | bytes) -> np.ndarray:
    """Load a photo as an RGB array, whatever its format and mode.

    Reads JPEG, PNG, BMP, GIF (first frame), WebP, TIFF and the other formats
    Pillow knows. Grayscale, palette, CMYK, 16-bit and float images become
    RGB; transparency is composited on white; 16-bit values are scaled by the
    bit depth (65535 -> 255, 32768 -> 128); the EXIF orientation of phone
    photos is applied.

    Args:
        source: a file path (str or ``pathlib.Path``) or the file's bytes.

    Returns:
        An ``(H, W, 3)`` ``uint8`` RGB array (a fresh, writable copy).

    Raises:
        ImageError: missing or empty file, not an image, truncated or damaged
            data, an image over :data:`MAX_PIXELS` pixels or under
            :data:`MIN_SIDE` pixels on a side, or an unsupported pixel mode.
            The message says what to do.
    """
    fp, what = _open_source(source)
    image = _open_image(fp, what)
    try:
        oriented = _apply_exif_orientation(image)
        rgb = _to_rgb(oriented, what)
    finally:
        image.close()
    return np.array(rgb, dtype=np.uint8, order="C", copy=True)


# --------------------------------------------------------------------------
# Model-sized copies
# --------------------------------------------------------------------------


def _as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Check an image array and give it three channels.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array, values 0..255.

    Returns:
        An ``(H, W, 3)`` array of the same dtype.

    Raises:
        ImageError: any other shape, or an empty image.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ImageError(
            f"expected an image of shape (height, width, 3), got {array.shape}. "
            "For a batch, resize each image; for RGBA, load it with load_image() first."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"the image is empty (shape {array.shape}).")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return array


def _parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """Turn ``224`` or ``(224, 224)`` into ``(height, width)``, checked positive."""
    height, width = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"size must be positive (height, width), got {size!r}")
    return int(height), int(width)


def resize_for_model(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
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
            with values 0..255, ``uint8`` or float.
        size: ``(height, width)`` of the model's input, or one int for a square.

    Returns:
        A ``float32`` array of shape ``(height, width, 3)``, values 0..255, not
        yet preprocessed for any particular model.

    Raises:
        ImageError: the array is not an image.
        ValueError: the size is not positive.
    """
    height, width = _parse_size(size)
    array = _as_rgb_array(image)
    if array.dtype == np.uint8:
        # The exact path keras.utils.load_img takes: one RGB resize.
        resized = Image.fromarray(np.ascontiguousarray(array)).resize(
            (width, height), Image.Resampling.BILINEAR
        )
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

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
#: a decompression bomb than a photo worth explaining. (Pillow's own
#: ``Image.MAX_IMAGE_PIXELS``, about 89 MP, applies too.)
MAX_PIXELS = 50_000_000

#: Most bytes of pixel memory :func:`load_image` may need at once: the decoded
#: image (Pillow holds 8-bit RGB in 4 bytes a pixel, 16-bit gray in 2) beside
#: the RGB array it becomes, counted from the header before decoding. Pixels
#: alone do not tell: a 99 kB 16-bit PNG of 7000x7000 decodes to 98 MB. With
#: this limit, loading stays under about 300 MB -- what a 2 GB Binder session
#: can spare beside VGG16. It admits an 8-bit RGB photo of 25 megapixels.
MAX_DECODED_BYTES = 200_000_000

#: Pixels converted at a time (float temporaries are a few MB, whatever the image size).
_BAND_PIXELS = 1 << 20

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
    # unwritable: get_file (and _cached_target) fall back to /tmp/.keras
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True)
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
            f"{MIRROR_ENV}={mirror!r} does not hold {sample.filename!r}" if mirror else f"{MIRROR_ENV} is not set"
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


#: Leading bytes of the formats people usually have. A file that starts like
#: one of these but that Pillow cannot identify is a damaged file, not some
#: other kind of file: Pillow gives up on a PNG with a bad header checksum
#: without saying so.
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _file_head(fp, size: int = 16) -> bytes:
    """The first bytes of a path or BytesIO (empty if unreadable)."""
    try:
        if isinstance(fp, io.BytesIO):
            return fp.getvalue()[:size]
        with open(fp, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _format_of(head: bytes) -> str | None:
    """The image format the leading bytes announce, if any."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)


def _not_an_image_message(fp, what: str) -> str:
    """Explain why Pillow could not identify the data, with a hint for common cases."""
    head = _file_head(fp)
    fmt = _format_of(head)
    if fmt is not None:
        return (
            f"{what} starts like a {fmt} file but is damaged or truncated (its header cannot be "
            f"read). Download it again, or {_SAVE_AS_HINT[0].lower()}{_SAVE_AS_HINT[1:]}"
        )
    if head.startswith(b"\x93NUMPY"):
        hint = "It is a NumPy .npy file: load it with numpy.load() instead."
    elif head.lstrip().startswith((b"<svg", b"<?xml")):
        hint = "SVG drawings are not supported: export it as PNG and try again."
    else:
        hint = _SAVE_AS_HINT
    return f"{what} is not an image file (or not a format Pillow can read). {hint}"


def _stored_bytes_per_pixel(mode: str) -> int:
    """Bytes per pixel Pillow uses to hold a decoded image of this mode."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4  # every other mode, 8-bit RGB included, is stored in 32 bits a pixel


#: Bytes a pixel that a format's decoder holds on top of the decoded image
#: (measured): libwebp decodes the whole picture into its own buffers first.
_DECODER_BYTES_PER_PIXEL = {"WEBP": 17}


def _peak_bytes(image: Image.Image) -> int:
    """Pixel memory :func:`load_image` needs at once for an image, known from its header.

    The decoded image lives beside the RGB array it is converted into (band by
    band, so conversion temporaries stay small); or, if its EXIF orientation
    says so, beside its rotated copy. The orientation of some formats is only
    known after decoding, so both are counted; so is what the decoder itself holds.
    """
    width, height = image.size
    pixels = width * height
    stored = pixels * _stored_bytes_per_pixel(image.mode)
    decoder = pixels * _DECODER_BYTES_PER_PIXEL.get(image.format or "", 0)
    return max(stored + 3 * pixels, 2 * stored, stored + decoder)


def _check_size(image: Image.Image, what: str) -> None:
    """Refuse, from the header alone, an image too large or too small to use.

    Raises:
        ImageError: over :data:`MAX_PIXELS` pixels, over :data:`MAX_DECODED_BYTES`
            bytes to load, or under :data:`MIN_SIDE` pixels on a side.
    """
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{MAX_PIXELS:,} pixels (it may be a decompression bomb). "
            "Resize it to a few megapixels and try again."
        )
    needed = _peak_bytes(image)
    if needed > MAX_DECODED_BYTES:
        raise ImageError(
            f"{what} is {width}x{height} pixels in mode {image.mode!r}, which needs about "
            f"{needed / 1e6:,.0f} MB of memory to load, more than the limit of "
            f"{MAX_DECODED_BYTES / 1e6:,.0f} MB. Resize it to a few megapixels and try again."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"{what} is only {width}x{height} pixels; images must be at least "
            f"{MIN_SIDE}x{MIN_SIDE}. Use a larger photo."
        )


#: What Pillow raises for data it recognised but cannot decode.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
)


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
    except _DECODE_ERRORS as exc:
        # Pillow recognised the format but the header itself is cut short or corrupt.
        raise ImageError(_damaged_message(what, exc)) from exc
    try:
        # Checked on the header, before decoding, so a bomb never reaches memory.
        _check_size(image, what)
        # Image.open only reads the header; load() decodes every byte, so a
        # truncated or corrupt file fails here rather than deep inside a model.
        image.load()
    except ImageError:
        image.close()
        raise
    except _DECODE_ERRORS as exc:
        image.close()
        raise ImageError(_damaged_message(what, exc)) from exc
    return image


def _damaged_message(what: str, exc: BaseException) -> str:
    """Message for a file Pillow recognised but could not decode."""
    return (
        f"{what} is damaged or truncated and cannot be decoded ({exc}). "
        f"Download it again, or {_SAVE_AS_HINT[0].lower()}{_SAVE_AS_HINT[1:]}"
    )


def _apply_exif_orientation(image: Image.Image) -> None:
    """Rotate/flip the image in place as its EXIF orientation tag says (phone photos).

    In place, so the decoded image is not copied when there is nothing to turn.
    """
    # A malformed EXIF block should not make an otherwise good photo unusable.
    with contextlib.suppress(OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        ImageOps.exif_transpose(image, in_place=True)


def _bands(image: Image.Image):
    """Yield ``(top, bottom, band)``: the image cut into strips of whole rows.

    Converting strip by strip keeps every temporary (float copies, RGBA
    composites) to about :data:`_BAND_PIXELS` pixels, whatever the image size.
    """
    width, height = image.size
    rows = max(1, _BAND_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        yield top, bottom, image.crop((0, top, width, bottom))


def _value_range(image: Image.Image, what: str) -> tuple[float, float]:
    """Smallest and largest pixel value of a one-channel image, read band by band.

    Raises:
        ImageError: NaN or infinite values.
    """
    low, high = np.inf, -np.inf
    for _, _, band in _bands(image):
        values = np.asarray(band)
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise ImageError(f"{what} holds NaN or infinite pixel values. {_SAVE_AS_HINT}")
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    return low, high


def _declared_bits(image: Image.Image) -> int | None:
    """The bit depth an integer image declares: 16 for ``I;16``, else the TIFF ``BitsPerSample``."""
    if image.mode.startswith("I;16"):
        return 16
    tag = getattr(image, "tag_v2", None)
    bits = tag.get(258) if tag is not None else None
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    return int(bits) if isinstance(bits, int) and 0 < bits <= 32 else None


def _integer_full_scale(image: Image.Image, low: float, high: float) -> float | None:
    """The value that means white in a 16/32-bit integer image, or None to stretch min..max.

    Values that all fit 0..255 are 8-bit data stored in a wider type: they
    stay as they are (a 32-bit TIFF of 0..255 is not scaled by 2**32 to black).
    Otherwise the declared bit depth is white (65535 for 16 bits); data with
    no declared depth that fits 16 bits is taken as 16-bit.
    """
    if low < 0:
        return None
    if high <= 255:
        return 255.0
    bits = _declared_bits(image) or (16 if high <= 0xFFFF else None)
    if bits and high <= (1 << bits) - 1:
        return float((1 << bits) - 1)
    return None


def _float_full_scale(low: float, high: float) -> float | None:
    """The value that means white in a float image: 1.0 or 255.0, or None to stretch."""
    if low >= 0.0 and high <= 1.0:
        return 1.0  # float images are conventionally 0..1
    if low >= 0.0 and high <= 255.0:
        return 255.0  # some tools write 0..255
    return None


def _scale_to_uint8(values: np.ndarray, low: float, high: float, full_scale: float | None) -> np.ndarray:
    """Map one band of pixel values to 0..255.

    Args:
        values: a 2-D array of one channel (one band: float64 is cheap here).
        low, high: the whole image's smallest and largest value.
        full_scale: the value that means white (e.g. 65535), or None to
            stretch low..high.

    Returns:
        A ``uint8`` array, rounded.
    """
    data = values.astype(np.float64)
    if full_scale is None:
        data = (data - low) / (high - low) if high > low else np.zeros_like(data)
    else:
        data = data / full_scale
    return np.clip(np.rint(data * 255.0), 0, 255).astype(np.uint8)


def _high_depth_converter(image: Image.Image, what: str):
    """A band -> ``(rows, W)`` uint8 gray function for a 16-bit, 32-bit integer or float image.

    Pillow's own ``convert("RGB")`` clips these modes at 255 (65535 -> 255 but
    also 300 -> 255), which turns most 16-bit photos white; scaling by the bit
    depth keeps their tones.

    Raises:
        ImageError: float data with NaN or infinity.
    """
    low, high = _value_range(image, what)
    full_scale = _float_full_scale(low, high) if image.mode == "F" else _integer_full_scale(image, low, high)
    return lambda band: _scale_to_uint8(np.asarray(band), low, high, full_scale)[:, :, None]


def _has_transparency(image: Image.Image) -> bool:
    """True if the image has an alpha channel or a transparent palette/colour entry."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _on_white(band: Image.Image) -> np.ndarray:
    """Composite a band on white: a model has no notion of "transparent", and white is how a browser shows it."""
    rgba = band.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def _plain_rgb(band: Image.Image) -> np.ndarray:
    """Pillow's own conversion, for every 8-bit mode without transparency."""
    return np.asarray(band.convert("RGB"))


def _to_rgb(image: Image.Image, what: str) -> np.ndarray:
    """Convert a decoded Pillow image of any supported mode to RGB uint8, band by band.

    Transparent pixels are composited on white.

    Args:
        image: a decoded Pillow image.
        what: the source's description for messages.

    Returns:
        An ``(H, W, 3)`` ``uint8`` C-contiguous, writable array.

    Raises:
        ImageError: the mode cannot be converted, or float data with NaN or infinity.
    """
    if image.mode.startswith("I") or image.mode == "F":
        convert = _high_depth_converter(image, what)
    elif _has_transparency(image):
        convert = _on_white
    else:
        convert = _plain_rgb
    width, height = image.size
    # Filled band by band: only the result and one band's temporaries exist beside the decoded image.
    rgb = np.empty((height, width, 3), np.uint8)
    try:
        for top, bottom, band in _bands(image):
            rgb[top:bottom] = convert(band)
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"{what} uses the pixel mode {image.mode!r}, which cannot be converted to RGB ({exc}). {_SAVE_AS_HINT}"
        ) from exc
    return rgb


def load_image(source: str | os.PathLike | bytes) -> np.ndarray:
    """Load a photo as an RGB array, whatever its format and mode.

    Reads JPEG, PNG, BMP, GIF (first frame), WebP, TIFF and the other formats
    Pillow knows. Grayscale, palette, CMYK, 16-bit and float images become
    RGB; transparency is composited on white; the EXIF orientation of phone
    photos is applied. 16/32-bit integer values are scaled by the bit depth
    (65535 -> 255, 32768 -> 128) unless they all fit 0..255, which stay as
    they are; float images are read as 0..1 (or 0..255 if they go above 1).

    Memory: the size is checked from the header, before decoding. An image
    must have at most :data:`MAX_PIXELS` pixels and need at most
    :data:`MAX_DECODED_BYTES` bytes while loading (decoded image + result),
    so loading never takes much more than that.

    Args:
        source: a file path (str or ``pathlib.Path``) or the file's bytes.

    Returns:
        An ``(H, W, 3)`` ``uint8`` RGB array (a fresh, writable copy).

    Raises:
        ImageError: missing or empty file, not an image, truncated or damaged
            data, an image over :data:`MAX_PIXELS` pixels or
            :data:`MAX_DECODED_BYTES` bytes, under :data:`MIN_SIDE` pixels on
            a side, or an unsupported pixel mode. The message says what to do.
    """
    fp, what = _open_source(source)
    with warnings.catch_warnings():
        # Pillow's notices about odd files ("Truncated File Read", "Corrupt EXIF data") would
        # land in a learner's notebook; the photo is decoded in full or refused with an ImageError.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        image = _open_image(fp, what)
        try:
            _apply_exif_orientation(image)
            return _to_rgb(image, what)
        finally:
            image.close()


# --------------------------------------------------------------------------
# Model-sized copies
# --------------------------------------------------------------------------

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

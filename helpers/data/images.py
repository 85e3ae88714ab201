"""The learner's own photo files, as RGB arrays: :func:`load_image`.

Any photo file (or its bytes) becomes an ``(H, W, 3)`` ``uint8`` RGB array,
whatever its mode (grayscale, alpha, palette, CMYK, 16-bit, float) and EXIF
orientation. Pillow opens, decodes, transposes and converts; this module adds
what Pillow lacks: a size and memory budget checked from the header before
decoding, band-by-band conversion that keeps the tones of 16-bit and float
images, and a one-line error a beginner can act on for every odd file.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

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
    # Kept: Pillow would say FileNotFoundError, IsADirectoryError or "cannot identify" for these three.
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
    # Kept beside Pillow's MAX_IMAGE_PIXELS: that is 89 MP, only warns below twice itself, and names no size.
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
    # Pillow's transpose, but a malformed EXIF block (Pillow raises SyntaxError) must not refuse a good photo.
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
    # Not Image.getextrema(): it misses a NaN anywhere but in the first pixel.
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
    elif image.has_transparency_data:  # alpha band, RGBA palette or a transparent colour entry
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

"""Sample photos, user images and model-sized copies (helpers.data)."""

import contextlib
import hashlib
import io
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import data
from helpers.data import (
    MIRROR_ENV,
    SAMPLES,
    UnknownSampleError,
    check_image_array,
    images,
    load_image,
    load_sample,
    resize_for_model,
    sample_path,
)
from helpers.errors import DataUnavailableError, HelpersError, ImageError

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
CAT_DOG_SHA256 = "ec62e965a2699adb4d043c0468817062bc7aa5019358fdf8ececd104d3de36e8"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """Save a Pillow image to bytes in the given format."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.fixture
def photo() -> Image.Image:
    """A 32x24 RGB image with distinct pixels, so rotations are detectable."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty Keras cache, so every sample test downloads."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return home


# --------------------------------------------------------------------------
# Bad inputs: each gets its own error
# --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_folder(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(ImageError, match=r"is empty \(0 bytes\)"):
        load_image(write(tmp_path, "empty.jpg", b""))


def test_empty_bytes():
    with pytest.raises(ImageError, match=r"data \(0 bytes\) is empty"):
        load_image(b"")


def test_text_file_is_not_an_image(tmp_path):
    path = write(tmp_path, "notes.jpg", b"this is not a picture\n" * 10)
    with pytest.raises(ImageError, match="not an image file.*JPEG or PNG"):
        load_image(path)


def test_npy_file_gets_a_numpy_hint(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ImageError, match=r"numpy\.load"):
        load_image(path)


def test_truncated_jpeg(tmp_path, photo):
    payload = encode(photo.resize((256, 256)), "JPEG", quality=95)
    path = write(tmp_path, "cut.jpg", payload[: len(payload) // 2])
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(path)


@pytest.mark.parametrize("keep", [20, 100, 300])
def test_jpeg_cut_inside_its_header(photo, keep):
    payload = encode(photo, "JPEG")
    with pytest.raises(ImageError, match="damaged or truncated|not an image file"):
        load_image(payload[:keep])


def test_bomb_over_our_limit(tmp_path, monkeypatch, photo):
    monkeypatch.setattr(images, "MAX_PIXELS", 500)
    with pytest.raises(ImageError, match=r"32x24 = 768 pixels, more than the limit of 500") as info:
        load_image(write(tmp_path, "big.png", encode(photo, "PNG")))
    assert "decompression bomb" in str(info.value)


@pytest.mark.parametrize("pillow_limit", [500, 300])  # warning zone (<2x) and error zone (>2x)
def test_bomb_over_pillows_limit(tmp_path, monkeypatch, photo, pillow_limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with pytest.raises(ImageError, match="too large to load safely"):
        load_image(write(tmp_path, "big.png", encode(photo, "PNG")))


def test_large_blank_png_is_refused_before_decoding(tmp_path):
    # 10000 x 6000 = 60 MP of zeros compresses to a few kB; it must be
    # refused from its header, never decoded.
    path = write(tmp_path, "blank.png", encode(Image.new("1", (10_000, 6_000)), "PNG"))
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageError, match="60,000,000 pixels"):
        load_image(path)


def test_too_small(tmp_path):
    path = write(tmp_path, "tiny.png", encode(Image.new("RGB", (4, 4)), "PNG"))
    with pytest.raises(ImageError, match=r"only 4x4 pixels.*at least 8x8"):
        load_image(path)


def test_wrong_type():
    with pytest.raises(ImageError, match="file path or the file's bytes"):
        load_image(np.zeros((8, 8, 3), np.uint8))


def test_unconvertible_mode():
    # Pillow has no La -> RGB(A) conversion; the message names the mode.
    with pytest.raises(ImageError, match="pixel mode 'La'"):
        images._to_rgb(Image.new("La", (8, 8)), "test image")


def test_float_image_with_nan():
    values = np.full((8, 8), np.nan, np.float32)
    with pytest.raises(ImageError, match="NaN"):
        images._to_rgb(Image.fromarray(values), "test image")


def test_errors_are_helpers_errors(tmp_path):
    with pytest.raises(HelpersError):
        load_image(tmp_path / "nope.png")


# --------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------


def test_rgb_png_round_trip(photo):
    out = load_image(encode(photo, "PNG"))
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, np.asarray(photo))
    assert out.flags.writeable and out.flags.c_contiguous


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "WEBP", "GIF"])
def test_other_formats(photo, fmt):
    options = {"lossless": True} if fmt == "WEBP" else {}
    out = load_image(encode(photo, fmt, **options))
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    if fmt != "GIF":  # GIF quantises to 256 colours
        np.testing.assert_array_equal(out, np.asarray(photo))


def test_grayscale_gives_three_equal_channels(photo):
    gray = photo.convert("L")
    out = load_image(encode(gray, "PNG"))
    assert out.shape == (24, 32, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], np.asarray(gray))


def test_rgba_transparent_becomes_white():
    rgba = np.zeros((8, 10, 4), np.uint8)
    rgba[..., 0] = 200  # red, but fully transparent...
    rgba[:, :5, 3] = 255  # ...except the left half, which is opaque red
    out = load_image(encode(Image.fromarray(rgba), "PNG"))
    assert (out[:, 5:] == 255).all()
    assert (out[:, :5] == [200, 0, 0]).all()


def test_la_transparent_becomes_white():
    la = Image.fromarray(np.stack([np.full((8, 8), 30, np.uint8), np.zeros((8, 8), np.uint8)], axis=2))
    assert la.mode == "LA"
    assert (load_image(encode(la, "PNG")) == 255).all()


def test_palette_with_and_without_transparency():
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.putpixel((0, 0), 1)
    out = load_image(encode(pal, "PNG"))
    assert (out[1, 1] == [10, 20, 30]).all() and (out[0, 0] == [40, 50, 60]).all()

    out = load_image(encode(pal, "PNG", transparency=0))
    assert (out[1, 1] == 255).all(), "transparent palette entry must become white"
    assert (out[0, 0] == [40, 50, 60]).all()


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    payload = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(payload)).n_frames == 2
    out = load_image(payload)
    assert (out == [255, 0, 0]).all()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_is_scaled_by_bit_depth(fmt):
    values = np.zeros((8, 8), np.uint16)
    values[0, 0], values[0, 1], values[0, 2] = 65535, 32768, 300
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    out = load_image(encode(image, fmt))
    assert out.shape == (8, 8, 3)
    assert (out[0, 0] == 255).all()
    assert np.all(np.abs(out[0, 1].astype(int) - 128) <= 1)
    assert (out[0, 2] == 1).all(), "300/65535 is dark grey, not clipped to white"
    assert (out[1:] == 0).all()


def test_32_bit_float_tiff():
    values = np.zeros((8, 8), np.float32)
    values[0, 0], values[0, 1] = 1.0, 0.5
    out = load_image(encode(Image.fromarray(values), "TIFF"))
    assert (out[0, 0] == 255).all() and np.all(np.abs(out[0, 1].astype(int) - 128) <= 1)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta+yellow = red
    out = load_image(encode(cmyk, "JPEG", quality=100))
    assert out.shape == (16, 16, 3)
    assert np.all(np.abs(out.astype(int) - [255, 0, 0]) <= 3)


def test_exif_orientation_is_applied(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = load_image(encode(photo, "PNG", exif=exif.tobytes()))
    assert out.shape == (32, 24, 3)
    np.testing.assert_array_equal(out, np.asarray(photo.transpose(Image.Transpose.ROTATE_270)))


def test_bytes_equal_path(tmp_path, photo):
    payload = encode(photo, "JPEG", quality=90)
    path = write(tmp_path, "photo.jpg", payload)
    from_path = load_image(path)
    np.testing.assert_array_equal(from_path, load_image(payload))
    np.testing.assert_array_equal(from_path, load_image(str(path)))
    np.testing.assert_array_equal(from_path, load_image(bytearray(payload)))


# --------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------


def test_samples_registry():
    assert set(SAMPLES) == {"cat_dog", "chelsea"}
    cat_dog = SAMPLES["cat_dog"]
    assert cat_dog.sha256 == CAT_DOG_SHA256
    assert cat_dog.url.startswith("https://raw.githubusercontent.com/ramprs/grad-cam/")
    assert "BSD" in cat_dog.credit_line and "Grad-CAM" in cat_dog.credit_line
    assert SAMPLES["chelsea"].url is None


def test_chelsea():
    image = load_sample("chelsea")
    assert image.shape == (300, 451, 3) and image.dtype == np.uint8
    path = sample_path("chelsea")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SAMPLES["chelsea"].sha256
    np.testing.assert_array_equal(load_image(path), image)


def test_unknown_sample_lists_valid_names():
    with pytest.raises(UnknownSampleError, match="'cat_dog', 'chelsea'") as info:
        load_sample("dog")
    assert isinstance(info.value, (ValueError, DataUnavailableError))


@pytest.mark.skipif(not SHARED_IMAGES.is_dir(), reason=f"offline mirror {SHARED_IMAGES} not present")
def test_cat_dog_from_mirror(keras_home, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(SHARED_IMAGES))
    image = load_sample("cat_dog")
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    cached = keras_home / data.CACHE_SUBDIR / "cat_dog.jpg"
    assert sample_path("cat_dog") == cached
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == CAT_DOG_SHA256

    # Once cached, neither mirror nor network is needed.
    monkeypatch.delenv(MIRROR_ENV)
    monkeypatch.setattr(urllib.request, "urlretrieve", _no_network)
    np.testing.assert_array_equal(load_sample("cat_dog"), image)


def test_mirror_with_wrong_content_is_rejected(keras_home, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cat_dog.jpg").write_bytes(b"not the real photo")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    with pytest.raises(DataUnavailableError, match="expected sha256") as info:
        sample_path("cat_dog")
    assert str(mirror) in str(info.value)
    assert not (keras_home / data.CACHE_SUBDIR / "cat_dog.jpg").exists()


def _no_network(*args, **kwargs):
    raise OSError("network is unreachable (test)")


def test_no_mirror_no_network_fails_fast(keras_home, monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    before = socket.getdefaulttimeout()
    start = time.monotonic()
    with pytest.raises(DataUnavailableError) as info:
        load_sample("cat_dog")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert SAMPLES["cat_dog"].url in message and MIRROR_ENV in message
    assert socket.getdefaulttimeout() == before, "the global socket timeout must be restored"
    cache = keras_home / data.CACHE_SUBDIR
    assert not cache.exists() or not any(cache.iterdir()), "no partial file may be left"


def test_mirror_without_the_file_says_so(keras_home, tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    with pytest.raises(DataUnavailableError, match="does not hold 'cat_dog.jpg'"):
        sample_path("cat_dog")


# --------------------------------------------------------------------------
# resize_for_model
# --------------------------------------------------------------------------


def test_resize_shape_dtype_and_constant():
    image = np.full((300, 451, 3), 77, np.uint8)
    out = resize_for_model(image, (224, 224))
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    assert (out == 77.0).all()

    out = resize_for_model(image.astype(np.float32) + 0.5, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 77.5, atol=1e-4)


def test_resize_is_whole_image_no_crop():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :100] = 255  # left half white
    out = resize_for_model(image, (50, 60))
    assert out.shape == (50, 60, 3)
    assert (out[:, :29] == 255).all() and (out[:, 31:] == 0).all()


def test_resize_matches_keras_load_img_bilinear(tmp_path, photo):
    import keras

    path = write(tmp_path, "photo.png", encode(photo.resize((97, 61)), "PNG"))
    expected = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(40, 30), interpolation="bilinear"))
    np.testing.assert_array_equal(resize_for_model(load_image(path), (40, 30)), expected)


def test_resize_accepts_grayscale_and_rejects_other_shapes():
    assert resize_for_model(np.zeros((20, 20), np.uint8), 10).shape == (10, 10, 3)
    with pytest.raises(ImageError, match="height, width, 3"):
        resize_for_model(np.zeros((1, 20, 20, 3), np.uint8), 10)
    with pytest.raises(ValueError, match="positive"):
        resize_for_model(np.zeros((20, 20, 3), np.uint8), (0, 10))


# --------------------------------------------------------------------------
# Arrays that are not RGB 0-255 photos (check_image_array, model_input)
# --------------------------------------------------------------------------


def _tiny_model():
    """conv -> global average pooling -> dense, on 16x16 RGB (not tests/conftest's: fuzz/ has its own conftest)."""
    import keras

    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    return keras.Model(image, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def _photo_classifier():
    """A tiny model with its own preprocessing: it takes photos, RGB 0-255."""
    from helpers import wrap_keras_model

    return wrap_keras_model(_tiny_model(), preprocess=lambda x: np.asarray(x, np.float32) / 127.5 - 1)


FLOAT_PHOTO = np.random.default_rng(3).uniform(0, 255, (20, 24, 3))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (FLOAT_PHOTO / 255, r"values in \[0, 1\] \(as plt.imread gives\): multiply it by 255"),
        (FLOAT_PHOTO / 127.5 - 1, "already preprocessed: pass the photo before preprocessing"),
        (FLOAT_PHOTO * 2, "values up to .*, above 255"),
        ((FLOAT_PHOTO * 257).astype(np.uint16), r"uint16 image has values up to \d+, above 255: convert it"),
        (FLOAT_PHOTO.astype(np.int32) - 5, "negative values"),
        (FLOAT_PHOTO > 100, "bool array"),
        (FLOAT_PHOTO.astype(np.complex64), "complex numbers"),
        (FLOAT_PHOTO.astype(str), "not numbers"),
        (np.full((8, 8, 3), np.inf), "NaN or infinite"),
        (np.zeros((0, 8, 3)), "empty"),
        (np.zeros((8, 8, 4), np.uint8), r"shape \(height, width, 3\)"),
        ([[1, 2], [3]], "cannot be made into a NumPy array"),
    ],
)
def test_arrays_that_are_not_photos_are_refused(image, message):
    with pytest.raises(ImageError, match=message):
        check_image_array(image)
    with pytest.raises(ImageError, match=message):
        resize_for_model(image, 8)


def test_model_input_refuses_a_0_1_float_image_for_a_model_with_preprocessing():
    from helpers.explain import model_input

    with pytest.raises(ImageError, match="multiply it by 255"):
        model_input(_photo_classifier(), FLOAT_PHOTO / 255)
    resized, x = model_input(_photo_classifier(), FLOAT_PHOTO)
    assert resized.shape == (16, 16, 3) and np.isfinite(x).all()


def test_model_input_takes_any_finite_values_for_a_model_without_preprocessing():
    from helpers import wrap_keras_model
    from helpers.explain import model_input

    bare = wrap_keras_model(_tiny_model())
    for image in (FLOAT_PHOTO / 255, FLOAT_PHOTO / 127.5 - 1, np.zeros((8, 8, 3))):
        resized, _ = model_input(bare, image)
        assert resized.shape == (16, 16, 3)
    with pytest.raises(ImageError, match="NaN"):
        model_input(bare, np.full((8, 8, 3), np.nan))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8, 3), np.uint8),  # black is a photo too
        np.zeros((8, 8, 3), np.float32),  # black in 0..1 and in 0..255 alike
        FLOAT_PHOTO,
        FLOAT_PHOTO.astype(np.float16),
        np.full((8, 8), 255.0),
    ],
)
def test_photos_are_accepted(image):
    assert check_image_array(image) is not None
    assert resize_for_model(image, 8).shape == (8, 8, 3)


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.int8, np.uint32])
def test_integer_arrays_with_values_0_255_equal_uint8(dtype):
    photo = FLOAT_PHOTO.astype(np.uint8)
    if dtype is np.int8:
        photo = photo // 2
    checked = check_image_array(photo.astype(dtype))
    assert checked.dtype == np.uint8
    np.testing.assert_array_equal(resize_for_model(photo.astype(dtype), 8), resize_for_model(photo, 8))


# --------------------------------------------------------------------------
# Files: bit depths, damaged headers, memory
# --------------------------------------------------------------------------


def test_32_bit_integer_tiff_with_8_bit_values_is_not_darkened():
    values = np.arange(64, dtype=np.int32).reshape(8, 8) * 4  # 0..252
    image = Image.fromarray(values)
    assert image.mode == "I"
    out = load_image(encode(image, "TIFF"))
    np.testing.assert_array_equal(out[:, :, 0], values)


def test_32_bit_integer_tiff_over_255_is_scaled_by_its_bit_depth():
    values = np.zeros((8, 8), np.int32)
    values[0, 0], values[0, 1] = 2**31 - 1, 1000
    out = load_image(encode(Image.fromarray(values), "TIFF"))
    assert np.all(np.abs(out[0, 0].astype(int) - 128) <= 1), "2**31 is half of 32 bits: mid grey"
    assert (out[0, 1] == 0).all() and (out[1:] == 0).all()


def test_png_with_a_bad_header_checksum_is_called_damaged(photo):
    payload = bytearray(encode(photo, "PNG"))
    payload[29] ^= 0xFF  # the IHDR chunk's CRC (signature 8 + length 4 + type 4 + data 13)
    with pytest.raises(ImageError, match="starts like a PNG file but is damaged or truncated"):
        load_image(bytes(payload))


def test_decoded_bytes_limit_counts_the_mode(monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 64 * 64 * 5 - 1)  # one pixel short for 16-bit gray
    gray16 = encode(Image.fromarray(np.zeros((64, 64), np.uint16)), "PNG")
    with pytest.raises(ImageError, match=r"64x64 pixels in mode 'I;16', which needs about 0 MB of memory"):
        load_image(gray16)
    assert load_image(encode(Image.new("L", (64, 64)), "PNG")).shape == (64, 64, 3)  # 4 bytes a pixel


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))


def _peak_growth(path: Path) -> tuple[float, str]:
    """Peak RSS growth (MB) while load_image(path) runs, and what it gave.

    Linux lets a process reset its peak RSS (VmHWM) through /proc/self/clear_refs.
    Big buffers are fresh mmaps, so memory freed by earlier tests does not hide them.
    """
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = _peak_rss()
    try:
        outcome = f"loaded {load_image(path).shape}"
    except ImageError as exc:
        outcome = str(exc)
    return (_peak_rss() - before) / 1e6, outcome


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to measure peak memory")
def test_16_bit_png_memory_is_bounded_by_decoded_bytes(tmp_path):
    accepted = write(tmp_path, "4000.png", encode(Image.new("I;16", (4000, 4000), 40000), "PNG"))
    growth, outcome = _peak_growth(accepted)
    assert outcome == "loaded (4000, 4000, 3)"
    assert growth < 150, f"a 4000x4000 16-bit PNG took {growth:.0f} MB (1.1 GB before the fix)"

    refused = write(tmp_path, "7000.png", encode(Image.new("I;16", (7000, 7000)), "PNG"))
    assert refused.stat().st_size < 200_000
    growth, outcome = _peak_growth(refused)
    assert "7000x7000 pixels in mode 'I;16', which needs about 245 MB of memory" in outcome
    assert growth < 20, f"refusing took {growth:.0f} MB: the image was decoded"


def test_values_beyond_float32_are_refused_for_models_without_preprocessing():
    # found by the fuzz suite: float64 values above float32's maximum became infinity in the model input
    huge = np.full((8, 8, 3), 3.5e38)
    with pytest.raises(ImageError, match="too large for float32"):
        resize_for_model(huge, 8, photo=False)
    assert np.isfinite(resize_for_model(np.full((8, 8, 3), 3.0e38), 8, photo=False)).all()


def test_pillow_notices_never_reach_the_learner(photo):
    # found by the fuzz suite: a cut TIFF made Pillow warn "Truncated File Read" into the notebook
    import warnings

    buffer = io.BytesIO()
    photo.crop((0, 0, 48, 32)).save(buffer, format="TIFF")
    for cut in range(8, len(buffer.getvalue()), 97):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.suppress(ImageError):
                load_image(buffer.getvalue()[:cut])
        assert not caught, [str(w.message) for w in caught]

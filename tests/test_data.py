"""Sample photos, user images and model-sized copies (helpers.data)."""

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
    monkeypatch.setattr(data, "MAX_PIXELS", 500)
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
        data._to_rgb(Image.new("La", (8, 8)), "test image")


def test_float_image_with_nan():
    values = np.full((8, 8), np.nan, np.float32)
    with pytest.raises(ImageError, match="NaN"):
        data._to_rgb(Image.fromarray(values), "test image")


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
    expected = keras.utils.img_to_array(
        keras.utils.load_img(path, target_size=(40, 30), interpolation="bilinear")
    )
    np.testing.assert_array_equal(resize_for_model(load_image(path), (40, 30)), expected)


def test_resize_accepts_grayscale_and_rejects_other_shapes():
    assert resize_for_model(np.zeros((20, 20), np.uint8), 10).shape == (10, 10, 3)
    with pytest.raises(ImageError, match="height, width, 3"):
        resize_for_model(np.zeros((1, 20, 20, 3), np.uint8), 10)
    with pytest.raises(ValueError, match="positive"):
        resize_for_model(np.zeros((20, 20, 3), np.uint8), (0, 10))

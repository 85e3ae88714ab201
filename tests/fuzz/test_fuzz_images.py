"""Fuzz the image readers: whatever the bytes or the array, a package error or a usable image.

``load_image`` gets random bytes, truncations and byte mutations of real files (the chelsea
sample, shrunk, in every common format); ``check_image_array`` and ``resize_for_model`` get
arrays of random dtypes, shapes and values. Never a raw Python exception, a hang, a NaN out or
a memory blow-up. Examples are derandomized (the same on every run and in CI); no database.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from fuzz_limits import max_rss_mb, time_limit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from helpers import load_sample
from helpers.data import check_image_array, load_image, resize_for_model
from helpers.errors import HelpersError

pytestmark = pytest.mark.fuzz

SECONDS_PER_EXAMPLE = 5
MAX_RSS_GROWTH_MB = 300  # load_image's own limit (MAX_DECODED_BYTES) is 200 MB

# bounded_memory spans all the examples of a test on purpose: it checks the peak over the whole run.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _seed_files() -> dict[str, bytes]:
    """The chelsea photo at 48x32 in each format people upload (and a 16-bit PNG)."""
    small = Image.fromarray(load_sample("chelsea")).resize((48, 32), Image.Resampling.BILINEAR)
    gray16 = Image.fromarray(np.asarray(small.convert("L"), np.uint16) * 257)
    return {
        "jpeg": _encode(small, "JPEG", quality=80),
        "png": _encode(small, "PNG"),
        "gif": _encode(small, "GIF"),
        "tiff": _encode(small, "TIFF"),
        "bmp": _encode(small, "BMP"),
        "webp": _encode(small, "WEBP", quality=80),
        "png16": _encode(gray16, "PNG"),
    }


SEEDS = _seed_files()


@pytest.fixture
def bounded_memory():
    before = max_rss_mb()
    yield
    growth = max_rss_mb() - before
    assert growth < MAX_RSS_GROWTH_MB, f"peak memory grew by {growth:.0f} MB"


def _load(data: bytes) -> None:
    """load_image: an ImageError (a HelpersError) or an (H, W, 3) uint8 image, nothing else."""
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            image = load_image(data)
        except HelpersError:
            return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 8 and image.flags.writeable


def test_seed_files_load():
    for name, data in SEEDS.items():
        assert load_image(data).shape == (32, 48, 3), name


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(bounded_memory, data):
    _load(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.floats(0, 1))
def test_truncated_files(bounded_memory, fmt, fraction):
    data = SEEDS[fmt]
    _load(data[: int(len(data) * fraction)])


def _mutated(data: bytes, edits) -> bytes:
    """Apply (position fraction, action, byte) edits: overwrite, insert or delete one byte."""
    out = bytearray(data)
    for where, action, value in edits:
        at = min(int(where * len(out)), len(out) - 1)
        if action == "set":
            out[at] = value
        elif action == "insert":
            out.insert(at, value)
        elif len(out) > 1:
            del out[at]
    return bytes(out)


EDITS = st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(["set", "insert", "delete"]), st.integers(0, 255)),
    min_size=1,
    max_size=8,
)
# Headers hold sizes, offsets and counts: mutations there find the most bugs.
HEADER_EDITS = st.lists(st.tuples(st.floats(0, 0.1), st.just("set"), st.integers(0, 255)), min_size=1, max_size=4)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), EDITS)
def test_mutated_files(bounded_memory, fmt, edits):
    _load(_mutated(SEEDS[fmt], edits))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), HEADER_EDITS)
def test_mutated_headers(bounded_memory, fmt, edits):
    _load(_mutated(SEEDS[fmt], edits))


# --- Arrays ------------------------------------------------------------------------------------------

DTYPES = st.sampled_from(
    [
        np.uint8,
        np.int8,
        np.uint16,
        np.int16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
        np.bool_,
        np.complex64,
        "U3",
        "M8[s]",
        object,
    ]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12)


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(st.one_of(SHAPES, st.sampled_from([(9, 11, 3), (10, 10), (12, 9, 1)])))
    if dtype.kind == "O":
        return np.full(shape, draw(st.sampled_from([None, 1, "a", 2.5])), dtype=object)
    if dtype.kind == "f":
        # widths=32 for float16 would overflow it: let hypothesis choose within the dtype.
        elements = st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8),
            st.floats(0, 255, width=dtype.itemsize * 8),
        )
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


def _check_resize(image, photo: bool) -> None:
    """resize_for_model: an ImageError or a finite (8, 8, 3) float32 image (0-255 for a photo)."""
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            checked = check_image_array(image, photo=photo)
        except HelpersError:
            with pytest.raises(HelpersError):
                resize_for_model(image, 8, photo=photo)
            return
        out = resize_for_model(image, 8, photo=photo)
    assert checked.ndim in (2, 3)
    assert out.shape == (8, 8, 3) and out.dtype == np.float32
    assert np.isfinite(out).all()
    if photo:
        assert out.min() >= 0 and out.max() <= 255


@FUZZ
@given(arrays(), st.booleans())
def test_random_arrays(bounded_memory, image, photo):
    _check_resize(image, photo)


@FUZZ
@given(arrays())
def test_nested_lists(bounded_memory, image):
    """What np.asarray makes of plain Python lists (ragged ones included) is checked the same way."""
    ragged = [image.tolist(), [1, 2]] if image.ndim else image.tolist()
    _check_resize(ragged, True)

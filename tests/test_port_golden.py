"""The Keras port of EfficientNet-Lite0 reproduces golden logits committed in the repository.

``data/reference/efficientnet_lite0_chelsea_logits.npy`` holds the 1000 logits an independent
implementation computed for the chelsea photo (see ``data/README.md``). The input is rebuilt here
from ``helpers.load_sample("chelsea")``, so the port test runs in every clone and never skips;
only the check that our rebuilt input equals the original one needs the CI-only ``../shared``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED

GOLDEN_LOGITS = REPO / "data" / "reference" / "efficientnet_lite0_chelsea_logits.npy"
SHARED_REFERENCE = SHARED / "reference" / "efficientnet_lite0_chelsea.npz"
TOP5 = [282, 285, 281, 287, 904]  # tiger cat, Egyptian cat, tabby, lynx, window screen
SHORT_SIDE, CROP = 256, 224


def reference_crop(rgb: np.ndarray) -> np.ndarray:
    """The reference recipe: shorter side to 256 (PIL bicubic), then the centre 224x224, as uint8 RGB."""
    image = Image.fromarray(rgb)
    scale = SHORT_SIDE / min(image.size)
    width, height = (round(side * scale) for side in image.size)
    image = image.resize((width, height), Image.BICUBIC)
    left, top = (width - CROP) // 2, (height - CROP) // 2
    return np.asarray(image.crop((left, top, left + CROP, top + CROP)))


def reference_input(rgb: np.ndarray) -> np.ndarray:
    """The golden logits' input: the crop as float32 NHWC, scaled by ``(rgb - 127) / 128``."""
    crop = reference_crop(rgb).astype(np.float32)
    return ((crop - 127.0) / 128.0)[None]


@pytest.fixture(scope="module")
def golden_input(chelsea) -> np.ndarray:
    return reference_input(chelsea)


def test_golden_logits_file_is_the_documented_one():
    logits = np.load(GOLDEN_LOGITS)
    assert logits.dtype == np.float32 and logits.shape == (1000,)
    assert list(np.argsort(-logits)[:5]) == TOP5
    np.testing.assert_allclose(logits[TOP5[:2]], [9.1667, 9.0862], atol=1e-4)


def test_port_matches_the_golden_logits(lite0, golden_input):
    logits = np.asarray(lite0.model(golden_input, training=False))[0]
    assert np.abs(logits - np.load(GOLDEN_LOGITS)).max() < 1e-4
    assert list(np.argsort(-logits)[:5]) == TOP5


def test_the_package_preprocessing_is_the_reference_scaling(lite0, chelsea):
    crop = reference_crop(chelsea)[None]
    np.testing.assert_allclose(lite0.preprocess(crop), reference_input(chelsea), atol=1e-7)


def test_rebuilt_input_is_the_reference_input(golden_input):
    """Where CI's shared reference exists: our recipe rebuilds its input exactly."""
    if not SHARED_REFERENCE.is_file():
        pytest.skip(f"the original reference input is only on CI machines ({SHARED_REFERENCE})")
    reference = np.load(SHARED_REFERENCE)
    np.testing.assert_allclose(golden_input, reference["input_nhwc"], atol=1e-6)
    np.testing.assert_array_equal(reference["logits"][0], np.load(GOLDEN_LOGITS))

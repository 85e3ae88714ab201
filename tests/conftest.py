"""Shared fixtures: tiny hand-made models, the real offline model, real photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MIRROR = SHARED / "data" / "images"

# As .ci/run does: use the offline mirror of the sample photos when it sits beside the checkout.
if MIRROR.is_dir():
    os.environ.setdefault("GRADCAM_DATA_MIRROR", str(MIRROR))

import keras  # noqa: E402

from helpers.data import BOXES  # noqa: E402

# Regions of the cat_dog photo (640x480), drawn by hand: (x0, y0, x1, y1), x1/y1 excluded.
DOG_BOX = BOXES["dog"]
CAT_BOX = BOXES["cat"]


@pytest.fixture(scope="session")
def lite0():
    from helpers import load_model

    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def cat_dog():
    from helpers import load_sample

    return load_sample("cat_dog")


@pytest.fixture(scope="session")
def chelsea():
    from helpers import load_sample

    return load_sample("chelsea")


def gap_dense_model(seed: int = 0, classes: int = 4, softmax: bool = False):
    """conv -> ReLU -> conv (the Grad-CAM layer) -> global average pooling -> one Dense."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(image)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(classes, activation="softmax" if softmax else None, name="predictions")(x)
    return keras.Model(image, out, name="gap_dense")


@pytest.fixture
def random_image():
    return np.random.default_rng(0).uniform(0, 255, size=(16, 16, 3)).astype(np.float32)


def pytest_configure(config):
    # Hypothesis (the fuzz tests) caches constants under ./.hypothesis even with database=None; the
    # examples are derandomized, so nothing there is worth keeping in the checkout.
    # (No conftest.py in tests/fuzz: a second module named `conftest` would shadow this one for
    # the test modules that import helpers from it.)
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "hypothesis-gradcam-fuzz")

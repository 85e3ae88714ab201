"""VGG16 with Keras's ImageNet weights: exactly the article's model, with logits out.

The weights (553 MB) come from the web once and are cached by Keras in
``$KERAS_HOME/models`` (default ``~/.keras/models``), hash-checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailableError
from ..network import reachable, socket_timeout

WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/"
    "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"
)
WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_MD5 = "64373286793e3c8b2b4e3219cbf3544b"  # the hash Keras itself checks
WEIGHTS_BYTES = 553_467_096
LAST_CONV_LAYER = "block5_conv3"
# Caffe-style preprocessing: BGR order, ImageNet mean subtracted, no scaling.
BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)

OFFLINE_HINT = (
    "Use the offline model instead: load_model('efficientnet_lite0'), or set "
    "GRADCAM_MODEL=efficientnet_lite0 before starting the notebooks."
)


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def cached_weights_path() -> Path:
    """Where Keras keeps the downloaded ImageNet weights."""
    return keras_home() / "models" / WEIGHTS_FILE


def weights_are_cached() -> bool:
    path = cached_weights_path()
    return path.is_file() and path.stat().st_size == WEIGHTS_BYTES


def download_weights(timeout: float = 3.0) -> Path:
    """The ImageNet weights file, downloading it once (hash-checked) if needed.

    Raises:
        ModelUnavailableError: within about ``timeout`` seconds when there is no
            network and no cached copy; no partial file is left behind.
    """
    import keras

    if not weights_are_cached() and not reachable(WEIGHTS_URL, timeout=timeout):
        raise ModelUnavailableError(
            f"VGG16's ImageNet weights ({WEIGHTS_BYTES / 1e6:.0f} MB) are not cached in "
            f"{cached_weights_path().parent} and cannot be downloaded: {WEIGHTS_URL} "
            f"is unreachable (no network?). {OFFLINE_HINT}"
        )
    try:
        with socket_timeout(60):
            path = keras.utils.get_file(
                WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5
            )
    except Exception as error:  # urllib, socket and hash errors all end here
        cached_weights_path().unlink(missing_ok=True)
        raise ModelUnavailableError(
            f"downloading VGG16's ImageNet weights from {WEIGHTS_URL} failed ({error}). "
            f"{OFFLINE_HINT}"
        ) from None
    return Path(path)


def build_vgg16():
    """VGG16's architecture with a linear (logit) output and untrained weights."""
    import keras

    return keras.applications.VGG16(weights=None, classifier_activation=None)


def load_h5_weights(model, path: str | os.PathLike) -> None:
    """Load a Keras HDF5 weights file one array at a time.

    ``model.load_weights`` reads every array of a layer into temporaries first;
    assigning dataset by dataset keeps the extra memory to one array (fc1's
    411 MB at most), which keeps VGG16 inside a 2 GB Binder session.
    """
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in group:
                raise ModelUnavailableError(f"{path} has no weights for layer {layer.name!r}.")
            layer_group = group[layer.name]
            names = [n.decode() if isinstance(n, bytes) else n for n in layer_group.attrs["weight_names"]]
            if len(names) != len(layer.weights):
                raise ModelUnavailableError(
                    f"{path}: layer {layer.name!r} has {len(names)} arrays, the model "
                    f"expects {len(layer.weights)}."
                )
            for variable, name in zip(layer.weights, names):
                array = layer_group[name][()]
                if tuple(array.shape) != tuple(variable.shape):
                    raise ModelUnavailableError(
                        f"{path}: {name} has shape {array.shape}, expected {tuple(variable.shape)}."
                    )
                variable.assign(array)
                del array


def preprocess_vgg16(images: np.ndarray) -> np.ndarray:
    """RGB 0-255 NHWC -> Caffe-style BGR with the ImageNet mean subtracted."""
    images = np.asarray(images, dtype=np.float32)
    return images[..., ::-1] - BGR_MEAN

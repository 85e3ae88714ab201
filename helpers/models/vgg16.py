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

# A local copy of the weights file (a classroom's USB stick, or a simulated file in the
# memory benchmark): used as it is, instead of Keras's cache and download.
WEIGHTS_ENV = "GRADCAM_VGG16_WEIGHTS"

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
    """Whether the weights are on this machine (Keras's cache or ``$GRADCAM_VGG16_WEIGHTS``)."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).is_file()
    path = cached_weights_path()
    return path.is_file() and path.stat().st_size == WEIGHTS_BYTES


def download_weights(timeout: float = 3.0) -> Path:
    """The ImageNet weights file, downloading it once (hash-checked) if needed.

    Raises:
        ModelUnavailableError: within about ``timeout`` seconds when there is no
            network and no cached copy; no partial file is left behind.
    """
    import keras

    if os.environ.get(WEIGHTS_ENV):
        local = Path(os.environ[WEIGHTS_ENV])
        if not local.is_file():
            raise ModelUnavailableError(f"{WEIGHTS_ENV}={local} does not name a file. {OFFLINE_HINT}")
        return local
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


def build_vgg16(weights_path: str | os.PathLike | None = None):
    """``keras.applications.VGG16`` with a linear (logit) output.

    Args:
        weights_path: a Keras HDF5 weights file (the ImageNet one), or None
            for random weights (the architecture alone, available offline).

    With a file, every variable starts as zeros (no random numbers are drawn)
    and is then filled from the file in slices of at most ``CHUNK_BYTES``.
    The usual way, random initialisation followed by ``load_weights``, holds
    random values, their temporaries and the file's arrays at once, and
    TensorFlow copies a NumPy array twice on its way into a variable: about
    2.3 GB at peak for VGG16 instead of about 1.2 GB, too much for a 2 GB
    Binder session.
    """
    import keras

    if weights_path is None:
        return keras.applications.VGG16(weights=None, classifier_activation=None)
    # Keras's stateless scope defers variable initialisation (the mechanism it
    # uses for lazy models); pinned Keras 3.15, kept in this one function.
    from keras.src.backend.common import global_state
    from keras.src.backend.common.stateless_scope import StatelessScope

    with StatelessScope(initialize_variables=False):
        model = keras.applications.VGG16(weights=None, classifier_activation=None)
    ours = {id(v) for v in model.weights}
    pending = global_state.get_global_attribute("uninitialized_variables", [])
    global_state.set_global_attribute("uninitialized_variables", [v for v in pending if id(v) not in ours])
    zeros = keras.initializers.Zeros()
    # Largest first (fc1: 411 MB): its transient copy then sits next to an
    # almost empty model instead of a full one.
    with _open_h5(weights_path) as f:
        pairs = sorted(_arrays_in_file(model, f, weights_path), key=lambda pair: -pair[1].size)
        for variable, dataset in pairs:
            variable._initializer = zeros
            variable._deferred_initialize()
            _assign_in_slices(variable, dataset)
    return model


CHUNK_BYTES = 128 * 2**20


def load_h5_weights(model, path: str | os.PathLike) -> None:
    """Assign a Keras HDF5 weights file to an existing model, array by array, in slices."""
    with _open_h5(path) as f:
        for variable, dataset in _arrays_in_file(model, f, path):
            _assign_in_slices(variable, dataset)


def _assign_in_slices(variable, dataset) -> None:
    """Copy an h5py dataset into a variable, at most ``CHUNK_BYTES`` of file at a time.

    Slice assignment writes into the variable's own buffer; a whole NumPy
    array on its way into TensorFlow is copied twice (3x its size at peak).
    """
    rows = dataset.shape[0] if dataset.ndim else 1
    step = max(1, CHUNK_BYTES // max(1, dataset.nbytes // max(rows, 1)))
    if dataset.ndim == 0 or step >= rows:
        variable.assign(dataset[()])
        return
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        variable.value[start:stop].assign(dataset[start:stop])


def _open_h5(path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ModelUnavailableError(f"cannot read weights file {path}: {error}") from None


def _arrays_in_file(model, f, path) -> list:
    """``(variable, dataset)`` for every weight of ``model`` in an open Keras HDF5 file.

    The h5py datasets are read lazily by the caller. Names and shapes are checked.

    Raises:
        ModelUnavailableError: the file does not fit the model.
    """
    group = f["model_weights"] if "model_weights" in f else f
    pairs = []
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
            dataset = layer_group[name]
            if tuple(dataset.shape) != tuple(variable.shape):
                raise ModelUnavailableError(
                    f"{path}: {name} has shape {dataset.shape}, expected {tuple(variable.shape)}."
                )
            pairs.append((variable, dataset))
    return pairs


def preprocess_vgg16(images: np.ndarray) -> np.ndarray:
    """RGB 0-255 NHWC -> Caffe-style BGR with the ImageNet mean subtracted."""
    images = np.asarray(images, dtype=np.float32)
    return images[..., ::-1] - BGR_MEAN

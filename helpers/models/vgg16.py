"""VGG16 with Keras's ImageNet weights: exactly the article's model, with logits out.

The weights (553 MB) come from the web once and are cached by Keras in
``$KERAS_HOME/models`` (default ``~/.keras/models``), hash-checked.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from pathlib import Path

import numpy as np

from .. import keras_compat
from ..errors import ModelUnavailableError, WeightsDownloadError
from ..network import download_problem, socket_timeout
from ..paths import keras_home
from .variables import assign_from_slices, tensor_from_slices

WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"
)
WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_MD5 = "64373286793e3c8b2b4e3219cbf3544b"  # the hash Keras itself checks
WEIGHTS_BYTES = 553_467_096
# Once the probe has had an answer, a download that waits this long for the next bytes is stuck
# (a proxy that drops big transfers), not slow: give up and say so rather than hang a lesson.
STALL_TIMEOUT = 20.0
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


def cached_weights_path() -> Path:
    """Where Keras keeps the downloaded ImageNet weights."""
    return keras_home() / "models" / WEIGHTS_FILE


def weights_are_cached() -> bool:
    """Whether the weights are on this machine (Keras's cache or ``$GRADCAM_VGG16_WEIGHTS``)."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).is_file()
    path = cached_weights_path()
    return path.is_file() and path.stat().st_size == WEIGHTS_BYTES


def download_weights(timeout: float = 3.0, stall_timeout: float = STALL_TIMEOUT) -> Path:
    """The ImageNet weights file, downloading it once (hash-checked) if needed.

    Args:
        timeout: seconds, in all, for the check that the file can be downloaded.
        stall_timeout: seconds the download may wait for any single answer
            (connecting, or the next bytes) before it gives up.

    Raises:
        WeightsDownloadError: (a :class:`ModelUnavailableError`) within about
            ``timeout`` seconds when the file cannot be had (no network, a
            proxy or captive portal in the way) and is not cached; or when the
            download fails or stalls. No partial file is left behind.
        ModelUnavailableError: ``$GRADCAM_VGG16_WEIGHTS`` names no file.
    """
    import keras

    if os.environ.get(WEIGHTS_ENV):
        local = Path(os.environ[WEIGHTS_ENV])
        if not local.is_file():
            raise ModelUnavailableError(f"{WEIGHTS_ENV}={local} does not name a file. {OFFLINE_HINT}")
        return local
    if not weights_are_cached():
        problem = download_problem(WEIGHTS_URL, timeout=timeout)
        if problem:
            raise WeightsDownloadError(
                f"VGG16's ImageNet weights ({WEIGHTS_BYTES / 1e6:.0f} MB) are not cached in "
                f"{cached_weights_path().parent} and cannot be downloaded from {WEIGHTS_URL}: "
                f"{problem}. {OFFLINE_HINT}",
                reason=problem,
            )
    try:
        with socket_timeout(stall_timeout):
            path = keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)
    except Exception as error:  # urllib, socket and hash errors all end here
        cached_weights_path().unlink(missing_ok=True)
        raise WeightsDownloadError(
            f"downloading VGG16's ImageNet weights from {WEIGHTS_URL} failed ({error}). {OFFLINE_HINT}",
            reason=_download_failure(error, stall_timeout),
        ) from None
    return Path(path)


def _download_failure(error: Exception, stall_timeout: float) -> str:
    """A few words for a failed download (Keras wraps urllib's errors in a plain Exception)."""
    if isinstance(error, (TimeoutError, socket.timeout)) or "timed out" in str(error):
        return f"it stalled for {stall_timeout:g} s"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def build_vgg16(weights_path: str | os.PathLike | None = None, *, seed: int = 0):
    """``keras.applications.VGG16`` with a linear (logit) output, built lean.

    Args:
        weights_path: a Keras HDF5 weights file (the ImageNet one), or None
            for random weights (the architecture alone, available offline):
            Glorot-uniform kernels and zero biases, as Keras draws them.
        seed: seed of the random weights.

    Every variable starts empty and is created from its values read (or
    drawn) in slices of at most ``variables.CHUNK_BYTES``, largest first. The usual way (Keras draws random
    values for all 138 M weights, then ``load_weights`` reads the file) holds
    random values, their temporaries and the file's arrays at once, and
    TensorFlow copies a NumPy array twice on its way into a variable: about
    2.3 GB at peak instead of about 1.3 GB, too much for a 2 GB Binder session.

    Starting empty needs Keras internals (see :mod:`helpers.keras_compat`).
    Where the installed Keras lacks them, VGG16 is built the ordinary way
    (``keras.applications.VGG16(weights=None)``: Keras draws random values
    for every weight) and the same values are then assigned slice by slice:
    the same model and logits, with one :class:`FallbackBuildWarning`, and
    a peak of :data:`FALLBACK_PEAK` instead of :data:`LEAN_PEAK`.
    """
    import keras

    lean, reason = keras_compat.LEAN_BUILD_AVAILABLE, None
    if lean:
        try:
            model = keras_compat.build_without_allocating(_keras_vgg16)
        except keras_compat.LeanBuildUnavailable as error:
            lean, reason = False, str(error).rstrip(".")
    else:
        reason = keras_compat.lean_build_missing()
    if not lean:
        warnings.warn(
            f"{reason}: VGG16 is built the ordinary way (Keras draws random values for all its weights "
            f"before they are replaced), so loading it peaks higher ({FALLBACK_PEAK} instead of {LEAN_PEAK}; "
            f"Binder allows 2 GB). Install {keras_compat.PINNED_KERAS} for the lean build.",
            FallbackBuildWarning,
            stacklevel=2,
        )
        model = _keras_vgg16()
    zeros = keras.initializers.Zeros()
    with contextlib.ExitStack() as stack:
        if weights_path is None:
            rng = np.random.default_rng(seed)
            sources = [
                (v, _glorot_uniform_rows(tuple(v.shape), rng) if len(v.shape) > 1 else None) for v in model.weights
            ]
        else:
            f = stack.enter_context(_open_h5(weights_path))
            sources = [(v, lambda a, b, _d=d: _d[a:b]) for v, d in _arrays_in_file(model, f, weights_path)]
        # Largest first (fc1: 411 MB): its transient copy then sits next to an
        # almost empty model instead of a full one.
        for variable, rows in sorted(sources, key=lambda pair: -int(np.prod(pair[0].shape))):
            if lean and rows is None:
                keras_compat.initialize_deferred(variable, zeros)
            elif lean:
                keras_compat.initialize_deferred(
                    variable, lambda shape, dtype, _r=rows: tensor_from_slices(shape, _r, dtype)
                )
            elif rows is None:
                variable.assign(zeros(variable.shape, variable.dtype))
            else:
                assign_from_slices(variable, rows)
    return model


class FallbackBuildWarning(keras_compat.KerasInternalsWarning):
    """VGG16 was built the ordinary way (more memory): the installed Keras lacks the lean build's internals."""


#: Peak resident memory of loading VGG16 from its weights file (Python and TensorFlow included),
#: lean and on the fallback; Guided Grad-CAM adds about 0.15 GB (benchmarks/bench_memory.py).
LEAN_PEAK = "about 1.1 GB"
FALLBACK_PEAK = "about 2.4 GB"


def _keras_vgg16():
    import keras

    return keras.applications.VGG16(weights=None, classifier_activation=None)


def _glorot_uniform_rows(shape: tuple[int, ...], rng):
    """Rows of a Glorot-uniform kernel on demand: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return lambda start, stop: rng.uniform(-limit, limit, size=(stop - start, *shape[1:])).astype(np.float32)


def load_h5_weights(model, path: str | os.PathLike) -> None:
    """Assign a Keras HDF5 weights file to an existing model, array by array, in slices."""
    with _open_h5(path) as f:
        for variable, dataset in _arrays_in_file(model, f, path):
            assign_from_slices(variable, lambda a, b, _d=dataset: _d[a:b])


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
    group = f.get("model_weights", f)
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
                f"{path}: layer {layer.name!r} has {len(names)} arrays, the model expects {len(layer.weights)}."
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

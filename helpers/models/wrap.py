"""Bring your own Keras classifier: wrap it so every method here can explain it."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import HelpersError
from .classifier import Classifier


def _as_float32(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32)


def wrap_keras_model(
    model,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    class_names: Sequence[str] | str | None = None,
    last_conv_layer: str | None = None,
    input_size: tuple[int, int] | None = None,
    input_is_bgr: bool = False,
    name: str | None = None,
) -> Classifier:
    """A :class:`Classifier` for any single-input Keras image classifier.

    Args:
        model: a built ``keras.Model`` (functional, Sequential, or with a Keras
            Application nested inside). A final softmax is fine: methods
            differentiate the pre-softmax scores anyway.
        preprocess: RGB 0-255 NHWC -> model input; default: unchanged (float32).
        class_names: one name per output, or ``"imagenet"``; default
            ``"class 0"``, ``"class 1"``, ...
        last_conv_layer: default layer for Grad-CAM; default: the last conv
            layer, past the BatchNorm/activation right after it.
        input_size: ``(height, width)``; default: read from the model.
        input_is_bgr: the preprocessing flips RGB to BGR (Caffe style).
        name: a short name; default ``model.name``.

    Raises:
        HelpersError: the model has no fixed input size and none was given, or
            the class names do not match the number of outputs.
        LayerError: the model has no conv layer.
    """
    from ..explain.layers import default_layer

    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else ()
    if input_size is None:
        if len(shape) != 3 or shape[0] is None or shape[1] is None:
            raise HelpersError(
                f"model {model.name!r} has input shape {shape}; pass input_size=(height, width)."
            )
        input_size = (int(shape[0]), int(shape[1]))
    outputs = int(model.outputs[0].shape[-1])
    if class_names == "imagenet":
        from ..imagenet import class_names as imagenet_names

        class_names = imagenet_names()
    elif class_names is None:
        class_names = tuple(f"class {i}" for i in range(outputs))
    if len(class_names) != outputs:
        raise HelpersError(
            f"{len(class_names)} class names given for a model with {outputs} outputs."
        )
    return Classifier(
        name=name or model.name,
        model=model,
        preprocess=preprocess or _as_float32,
        input_size=input_size,
        last_conv_layer=last_conv_layer or default_layer(model),
        class_names=tuple(class_names),
        input_is_bgr=input_is_bgr,
        description=f"user model {model.name!r}",
    )


def as_classifier(model_or_classifier) -> Classifier:
    """A :class:`Classifier` as is; a bare ``keras.Model`` wrapped with the defaults."""
    if isinstance(model_or_classifier, Classifier):
        return model_or_classifier
    import keras

    if not isinstance(model_or_classifier, keras.Model):
        raise HelpersError(
            "expected a Classifier (from helpers.load_model) or a keras.Model, not "
            f"{type(model_or_classifier).__name__}."
        )
    return wrap_keras_model(model_or_classifier)

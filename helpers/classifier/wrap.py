"""Bring your own Keras classifier: wrap it so every method here can explain it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import HelpersError, ModelError
from .base import Classifier

if TYPE_CHECKING:
    import keras


def _as_float32(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32)


def wrap_keras_model(
    model: keras.Model,
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
            The methods take RGB photos: a model whose input has another number
            of channels (grayscale: 1) needs a ``preprocess`` that converts, and
            its output channels are checked against the model's input here.
        class_names: one name per output, or ``"imagenet"``; default
            ``"class 0"``, ``"class 1"``, ...
        last_conv_layer: default layer for Grad-CAM; default: the last conv
            layer, past the BatchNorm/activation right after it. A model without
            a conv layer is wrapped too (``last_conv_layer=None``): saliency and
            guided backprop need no layer; the CAMs then raise a LayerError.
        input_size: ``(height, width)``; default: read from the model.
        input_is_bgr: the preprocessing flips RGB to BGR (Caffe style).
        name: a short name; default ``model.name``.

    Raises:
        HelpersError: the model has no fixed input size and none was given, or
            the class names do not match the number of outputs.
        ModelError: the model has several inputs or outputs, its output is not
            ``(batch, classes)``, or its input does not take 3 channels and no
            ``preprocess`` turning RGB photos into its input was given.
        LayerError: ``last_conv_layer`` is not a conv layer of the model.
    """
    from ..graph.layers import find_layer

    shape = _check_single_input_and_output(model)
    if input_size is None:
        if len(shape) != 3 or shape[0] is None or shape[1] is None:
            raise HelpersError(f"model {model.name!r} has input shape {shape}; pass input_size=(height, width).")
        input_size = (int(shape[0]), int(shape[1]))
    _check_channels(model, shape, preprocess, input_size)
    outputs = int(model.outputs[0].shape[-1])
    if class_names == "imagenet":
        from ..imagenet import class_names as imagenet_names

        class_names = imagenet_names()
    elif class_names is None:
        class_names = tuple(f"class {i}" for i in range(outputs))
    if len(class_names) != outputs:
        raise HelpersError(f"{len(class_names)} class names given for a model with {outputs} outputs.")
    if last_conv_layer is not None:
        find_layer(model, last_conv_layer)  # a typo fails here, not at the first explanation
    return Classifier(
        name=name or model.name,
        model=model,
        preprocess=preprocess or _as_float32,
        input_size=input_size,
        last_conv_layer=_default_layer_or_none(model) if last_conv_layer is None else last_conv_layer,
        class_names=tuple(class_names),
        input_is_bgr=input_is_bgr,
        description=f"user model {model.name!r}",
        takes_photos=preprocess is not None,
    )


def _default_layer_or_none(model) -> str | None:
    from ..errors import LayerError
    from ..graph.layers import default_layer

    try:
        return default_layer(model)
    except LayerError:  # no conv layer: fine for the gradient methods, refused by the CAMs when asked
        return None


def _check_single_input_and_output(model) -> tuple:
    """The model's input shape without the batch axis, once it is known to be one image -> one score vector."""
    inputs, outputs = getattr(model, "inputs", None) or [], getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise ModelError(
            f"model {model.name!r} has {len(outputs)} outputs; wrap the output you want to explain: "
            "keras.Model(model.input, model.outputs[0])."
        )
    if len(inputs) != 1:
        raise ModelError(
            f"model {model.name!r} has {len(inputs)} inputs; the methods explain one image input, so "
            "build a model from the image alone (fix the other inputs inside it)."
        )
    if len(outputs[0].shape) != 2:
        raise ModelError(
            f"model {model.name!r} outputs shape {tuple(outputs[0].shape)}; the methods explain "
            "classifiers, whose output is (batch, classes)."
        )
    return tuple(inputs[0].shape[1:])


def _check_channels(model, shape: tuple, preprocess, input_size: tuple[int, int]) -> None:
    """RGB photos reach the model through ``preprocess``: its output must have the model's channels."""
    channels = shape[-1] if len(shape) == 3 else None
    if preprocess is None:
        if channels not in (3, None):
            raise ModelError(
                f"model {model.name!r} takes {channels}-channel input, but the methods take RGB photos; "
                f"pass preprocess= turning an RGB batch (N, H, W, 3), values 0-255, into its "
                f"(N, H, W, {channels}) input (for grayscale: images.mean(axis=-1, keepdims=True))."
            )
        return
    # One tiny batch through the user's (NumPy) preprocess: cheap, and catches a mismatch now.
    probe = np.zeros((1, *input_size, 3), np.float32)
    got = np.shape(preprocess(probe))
    if channels is not None and (len(got) != 4 or got[-1] != channels):
        raise ModelError(
            f"preprocess turns an RGB batch of shape {probe.shape} into shape {got}, but model "
            f"{model.name!r} takes {channels}-channel input (batch, height, width, {channels}); "
            "make preprocess return the model's input."
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

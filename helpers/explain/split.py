"""Splitting a classifier at a conv layer: the article's two models, and the general way.

The article splits VGG16 into a ``last_conv_layer_model`` (image -> block5_conv3)
and a ``classifier_model`` (block5_conv3 -> logits) that re-applies the layers
after it. That works when the head is a simple chain. The general mechanism,
used by every method here, is one model with two outputs, the feature map and
the logits, built by re-tracing the graph with nested models inlined, so it
also works when a Keras Application sits inside a user's transfer-learning
model (where ``Model(outer.input, inner_layer.output)`` fails with "Graph
disconnected").
"""

from __future__ import annotations

import keras

from ..errors import LayerError
from .layers import find_layer


def split_model(model: keras.Model, layer_name: str) -> tuple[keras.Model, keras.Model]:
    """The article's split: ``(last_conv_layer_model, classifier_model)``.

    Args:
        model: a functional or Sequential ``keras.Model`` whose layers after
            ``layer_name`` form a simple chain (VGG16, EfficientNet-Lite0's head).
        layer_name: the conv layer to split at, e.g. ``"block5_conv3"``.

    Returns:
        Two models. ``classifier_model(last_conv_layer_model(x))`` equals ``model(x)``.

    Raises:
        LayerError: unknown layer, a nested layer, or a head that is not a chain
            (use :func:`feature_and_logits_model` there).
    """
    layer = find_layer(model, layer_name)
    if layer not in model.layers:
        raise LayerError(
            f"layer {layer_name!r} is inside a nested model; split_model only re-applies "
            "top-level layers. Use feature_and_logits_model(model, layer_name) instead."
        )
    # A single input passed as a tensor, not a list, so that calling the model on an
    # array does not warn about the input structure.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    last_conv_layer_model = keras.Model(inputs, layer.output, name="last_conv_layer_model")

    head = model.layers[model.layers.index(layer) + 1 :]
    features = keras.Input(shape=tuple(layer.output.shape[1:]), name=f"{layer_name}_output")
    x, previous = features, layer.output
    for head_layer in head:
        if _single_input(head_layer) is not previous:
            raise LayerError(
                f"the layers after {layer_name!r} are not a simple chain ({head_layer.name!r} "
                "does not take the previous layer's output), so they cannot be re-applied one "
                "by one. Use feature_and_logits_model(model, layer_name) instead."
            )
        x, previous = head_layer(x), head_layer.output
    classifier_model = keras.Model(features, x, name="classifier_model")
    return last_conv_layer_model, classifier_model


def _single_input(layer):
    inputs = layer.input
    if isinstance(inputs, (list, tuple)):
        return inputs[0] if len(inputs) == 1 else None
    return inputs


def feature_and_logits_model(model: keras.Model, layer_name: str) -> keras.Model:
    """One model, two outputs: the feature map at ``layer_name`` and the model's output.

    Works for functional and Sequential models, residual heads, and nested
    models (a Keras Application inside a transfer-learning model), because it
    re-calls every layer on a fresh input with nested models inlined. The
    layers (and so the weights) are shared, not copied.

    Raises:
        LayerError: unknown layer, a layer that is called more than once, or a
            layer inside a subclassed model that cannot be inlined.
    """
    target = find_layer(model, layer_name)
    if len(model.inputs) != 1:
        raise LayerError(f"model {model.name!r} has {len(model.inputs)} inputs; one image input is needed.")
    image = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
    captured: list = []
    logits = _inline(model, (image,), {}, target, captured)
    if len(captured) != 1:
        raise LayerError(
            f"layer {layer_name!r} ran {len(captured)} times in one forward pass of "
            f"{model.name!r}; Grad-CAM needs a layer that runs exactly once. If it sits in "
            "a subclassed model, pass the Keras model that contains it directly."
        )
    return keras.Model(image, [captured[0], logits], name=f"{model.name}_features_and_logits")


def _inline(operation, args, kwargs, target, captured):
    """Call ``operation`` on symbolic tensors, expanding nested models layer by layer."""
    if isinstance(operation, keras.Sequential):
        x = args[0]
        for layer in operation.layers:
            x = _inline(layer, (x,), {}, target, captured)
        outputs = x
    elif isinstance(operation, keras.Model) and hasattr(operation, "_run_through_graph"):
        # Functional: walk its graph, inlining as we go. _run_through_graph is the
        # same walk Keras uses in Functional.call (pinned Keras 3.15).
        outputs = operation._run_through_graph(
            args[0],
            operation_fn=lambda op: lambda *a, **k: _inline(op, a, k, target, captured),
        )
    else:
        outputs = operation(*args, **kwargs)
    if operation is target:
        captured.append(outputs)
    return outputs

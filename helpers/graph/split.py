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

from .. import keras_compat
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

    Inlining walks functional graphs with a Keras internal (see
    :mod:`helpers.keras_compat`). Where the installed Keras lacks it, a
    functional model that holds the layer at its top level is split the public
    way, ``keras.Model(model.inputs, [layer.output, model.output])``; a layer
    inside a nested functional model then needs the pinned Keras.

    Raises:
        LayerError: unknown layer, a layer that is called more than once, or a
            layer inside a subclassed model that cannot be inlined.
        KerasVersionError: the layer sits inside a nested functional model and
            the installed Keras cannot walk its graph.
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
    elif keras_compat.walks_graph(operation):
        # Functional: walk its graph, inlining as we go (the walk of Functional.call).
        outputs = keras_compat.run_through_graph(
            operation,
            args[0],
            operation_fn=lambda op: lambda *a, **k: _inline(op, a, k, target, captured),
        )
    elif _is_functional(operation) and _contains(operation, target):
        outputs = _call_split_at(operation, target, args, kwargs, captured)
    else:
        outputs = operation(*args, **kwargs)
    if operation is target:
        captured.append(outputs)
    return outputs


def _is_functional(operation) -> bool:
    """A functional model: a ``keras.Model`` with a graph from inputs to outputs (not Sequential, not subclassed)."""
    if not isinstance(operation, keras.Model) or isinstance(operation, keras.Sequential):
        return False
    try:
        return bool(operation.inputs) and bool(operation.outputs)
    except (AttributeError, ValueError):
        return False


def _contains(model, target) -> bool:
    return any(
        layer is target or (isinstance(layer, keras.Model) and _contains(layer, target)) for layer in model.layers
    )


def _call_split_at(model, target, args, kwargs, captured):
    """Without the graph walk: call ``model`` split the public way at a layer of its own top level.

    ``keras.Model(model.inputs, [target.output, model.output])`` shares the
    layers; a target inside a nested functional model would need the walk
    (``Model(outer.inputs, inner_layer.output)`` is "Graph disconnected").
    """
    if target not in model.layers:
        raise keras_compat.KerasVersionError(
            f"layer {target.name!r} sits inside a model nested in {model.name!r}; reaching it needs "
            f"{keras_compat.graph_walk_missing()}. Install the Keras pinned in "
            f"pyproject.toml ({keras_compat.PINNED_KERAS}), or pass the nested model that holds the layer "
            "directly."
        )
    try:
        features = target.output
    except (AttributeError, ValueError):  # called more than once: no single output
        raise LayerError(
            f"layer {target.name!r} is called more than once in {model.name!r}; Grad-CAM needs a layer "
            "that runs exactly once."
        ) from None
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    split = keras.Model(inputs, [features, model.outputs[0] if len(model.outputs) == 1 else model.outputs])
    features, outputs = split(*args, **kwargs)
    captured.append(features)
    return outputs

"""Finding layers in any Keras model, nested ones included (model quirks live here)."""

from __future__ import annotations

import keras

from ..errors import LayerError

CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)
# Layers that keep a conv layer's feature map as it is, channel by channel. The default
# Grad-CAM layer is the last conv layer *after* these (post-BN, post-ReLU, post-residual add),
# which is what the Grad-CAM paper and the Keras examples use.
ELEMENTWISE_TYPES = (
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Add,
)


def is_nested_model(layer) -> bool:
    return isinstance(layer, keras.Model)


def flat_layers(model) -> list:
    """Every layer of ``model`` in call order, nested models expanded in place."""
    result = []
    for layer in model.layers:
        if is_nested_model(layer):
            result.extend(flat_layers(layer))
        else:
            result.append(layer)
    return result


def output_rank(layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):  # a layer never called symbolically
        return None


def feature_map_layers(model) -> list:
    """Layers whose output is a 4-D feature map ``(batch, h, w, channels)``."""
    return [layer for layer in flat_layers(model) if output_rank(layer) == 4]


def default_layer(model) -> str:
    """The model's last conv layer, moved past the BN/activation/add right after it.

    Raises:
        LayerError: the model has no 2-D convolution.
    """
    layers = flat_layers(model)
    conv_positions = [i for i, layer in enumerate(layers) if isinstance(layer, CONV_TYPES)]
    if not conv_positions:
        raise LayerError(
            f"model {model.name!r} has no 2-D convolutional layer, so there is no feature "
            "map for Grad-CAM to weight. Grad-CAM needs a CNN (Conv2D layers with a "
            "(batch, height, width, channels) output)."
        )
    position = conv_positions[-1]
    while position + 1 < len(layers) and isinstance(layers[position + 1], ELEMENTWISE_TYPES):
        if output_rank(layers[position + 1]) != 4:
            break
        position += 1
    return layers[position].name


def find_layer(model, name: str):
    """The layer called ``name`` anywhere in ``model`` (nested models included).

    Raises:
        LayerError: no such layer, or it does not output a 4-D feature map.
    """
    if not isinstance(name, str):
        raise LayerError(f"a layer is given by its name (a str), not {type(name).__name__}.")
    if not name.strip():
        # An empty name is a bug in the caller (a blank widget field, a "" default), never a choice.
        raise LayerError(
            f"layer {name!r} is not a layer name; pass layer=None for the model's default conv layer, or "
            f"one of {_examples(model)}."
        )
    for layer in flat_layers(model):
        if layer.name == name:
            if output_rank(layer) != 4:
                raise LayerError(
                    f"layer {name!r} outputs shape {tuple(layer.output.shape)}, not a feature "
                    "map (batch, height, width, channels). Grad-CAM needs a conv layer, for "
                    f"example {_examples(model)}."
                )
            return layer
    raise LayerError(
        f"model {model.name!r} has no layer named {name!r}. Conv layers it has include "
        f"{_examples(model)} (see model.summary())."
    )


def _examples(model) -> str:
    # The input image and pooling layers are 4-D too, but never a useful Grad-CAM layer: do not suggest them.
    names = [layer.name for layer in _map_layers(model)][-4:]
    return ", ".join(repr(n) for n in names) if names else "(none: it has no conv layer)"


def block_name(layer_name: str) -> str:
    """The block a layer belongs to: its name up to the first underscore.

    ``block6d_expand_conv`` -> ``block6d``, ``top_conv`` -> ``top``,
    ``block5_conv3`` (VGG16) -> ``block5``, ``predictions`` -> ``predictions``.
    """
    return layer_name.split("_", 1)[0]


def _keras_model(model):
    """The keras.Model itself, given one or anything that carries one as ``.model`` (a Classifier)."""
    return model if isinstance(model, keras.Model) else getattr(model, "model", model)


# Layers worth offering for Grad-CAM at several depths.

_POOLING = ("MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling2D", "InputLayer")


def _map_layers(model):
    return [layer for layer in feature_map_layers(_keras_model(model)) if type(layer).__name__ not in _POOLING]


def stage_layers(model) -> list[str]:
    """The last block output (:func:`block_output_layers`) at each spatial resolution, shallow to deep.

    VGG16: ``block1_conv2`` (224x224), ``block2_conv2``, ``block3_conv3``,
    ``block4_conv3``, ``block5_conv3`` (14x14). EfficientNet-Lite0:
    ``block1a_project_bn`` (112x112), ``block2b_add``, ``block3b_add``,
    ``block5c_add``, ``top_activation`` (7x7). The last three are the
    "comparable stages" of VGG16's blocks 3, 4 and 5: each halves the
    resolution of the one before.
    """
    last: dict = {}
    for name in block_output_layers(model):
        shape = find_layer(_keras_model(model), name).output.shape
        last[tuple(shape[1:3])] = name  # later blocks overwrite earlier ones
    return list(last.values())


def block_output_layers(model) -> list[str]:
    """The output of every block (the last feature-map layer of each name prefix), shallow to deep.

    EfficientNet-Lite0: ``stem_activation``, ``block1a_project_bn``,
    ``block2a_project_bn``, ``block2b_add``, ... ``top_activation``.
    VGG16: ``block1_conv2`` ... ``block5_conv3``. Good choices for a layer dropdown.
    """
    last: dict = {}
    for layer in _map_layers(model):
        last[block_name(layer.name)] = layer.name
    return list(last.values())

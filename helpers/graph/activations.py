"""Guided backpropagation's ReLU rule, installed on a model in place and always removed.

Guided backprop (Springenberg et al. 2015) changes only the *backward* pass of
each ReLU. Plain backprop lets a gradient through where the forward input was
positive; the "deconvnet" rule lets it through where the gradient is positive;
guided backprop requires both:

    grad_in = grad_out * [grad_out > 0] * [x > 0]

For ReLU6 (EfficientNet-Lite0, MobileNet) the forward mask is the derivative
[0 < x < 6]: above 6 the unit is flat, so no change of the input can move it.

The rule is swapped into the *same* model object (no clone: cloning VGG16 costs
about 850 MB) and restored in ``finally``. A ``tf.function`` traced while the
swap is active keeps it, so callers keep guided and plain traces apart.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import keras
import tensorflow as tf

from ..errors import UnsupportedActivationError, UnverifiedLayerError
from .layers import flat_layers

_state = threading.local()


def backward_rule() -> str:
    """The rule patched ReLUs use when their gradient graph is built: 'guided' or 'plain'."""
    return getattr(_state, "rule", "guided")


@contextlib.contextmanager
def use_backward_rule(rule: str):
    """Build gradients of patched ReLUs with ``rule`` inside this block.

    The gradient function runs when ``tape.gradient`` is called (at trace time
    inside a ``tf.function``), so one forward pass can yield both the plain
    gradient (for Grad-CAM's weights) and the guided one (for the picture).
    """
    if rule not in ("guided", "plain"):
        raise ValueError(f"rule must be 'guided' or 'plain', not {rule!r}")
    previous = backward_rule()
    _state.rule = rule
    try:
        yield
    finally:
        _state.rule = previous


def guided_relu(x, max_value=None):
    """ReLU (or ReLU clipped at ``max_value``) whose gradient follows :func:`backward_rule`.

    The backward pass uses TensorFlow's fused ``ReluGrad``/``Relu6Grad`` kernels
    (one pass over the tensor, as plain backprop does); the guided rule only adds
    a ReLU of the upstream gradient in front: ``ReluGrad(relu(g), x) = g [g > 0] [x > 0]``.
    """
    if max_value is None:
        forward, mask = tf.nn.relu, tf.raw_ops.ReluGrad
    elif float(max_value) == 6.0:
        forward, mask = tf.nn.relu6, tf.raw_ops.Relu6Grad
    else:
        forward, mask = (lambda v: tf.clip_by_value(v, 0.0, max_value)), _clipped_relu_grad(max_value)

    @tf.custom_gradient
    def relu(x):
        def grad(upstream):
            if backward_rule() == "guided":
                upstream = tf.nn.relu(upstream)
            return mask(gradients=upstream, features=x)

        return forward(x), grad

    return relu(x)


def _clipped_relu_grad(max_value):
    """The gradient mask of ``clip(x, 0, max_value)``: passes where ``0 < x < max_value``."""

    def mask(gradients, features):
        passes = tf.logical_and(features > 0, features < max_value)
        return gradients * tf.cast(passes, gradients.dtype)

    return mask


def _guided_relu6(x):
    return guided_relu(x, max_value=6.0)


def _linear(x):
    return x


_RELU_NAMES = {"relu": None, "relu6": 6.0}
_OUTPUT_NONLINEARITIES = {"softmax", "sigmoid", "log_softmax"}
_SAFE_NAMES = {"linear"}
_UNSUPPORTED_LAYER_TYPES = (keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax)


def _activation_name(function) -> str:
    return getattr(function, "__name__", type(function).__name__)


def output_layer(model):
    """The layer that produces the model's output (the last one in call order)."""
    return flat_layers(model)[-1]


def unsupported_activations(model) -> list[str]:
    """``"layer (activation)"`` for every hidden activation guided backprop cannot handle."""
    found = []
    last = output_layer(model)
    for layer in flat_layers(model):
        if isinstance(layer, _UNSUPPORTED_LAYER_TYPES) and layer is not last:
            found.append(f"{layer.name} ({type(layer).__name__})")
        elif isinstance(layer, keras.layers.ReLU):
            if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
                found.append(f"{layer.name} (ReLU with negative_slope/threshold)")
        elif hasattr(layer, "activation") and callable(layer.activation):
            name = _activation_name(layer.activation)
            if name in _RELU_NAMES or name in _SAFE_NAMES:
                continue
            if layer is last and name in _OUTPUT_NONLINEARITIES:
                continue
            found.append(f"{layer.name} ({name})")
    return found


# Ops (not layers) a functional graph may hold, e.g. from ``x * 2 + 1`` or ``keras.ops.mean``:
# these are linear or only move values, so plain backprop through them is what guided backprop
# wants. Any other op (``keras.ops.silu``, even ``keras.ops.relu``, which is not patched) is refused.
_LINEAR_OPS = {
    "Add",
    "Subtract",
    "Multiply",
    "Divide",
    "TrueDivide",
    "Negative",
    "Reshape",
    "Transpose",
    "Concatenate",
    "GetItem",
    "Mean",
    "Sum",
    "ExpandDims",
    "Squeeze",
    "Cast",
}


# Keras layers whose call runs someone else's code: as opaque as a Lambda.
_WRAPPER_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in ("TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer")
    if hasattr(keras.layers, name)
)


def _defined_in_keras(cls, method: str) -> bool:
    """Whether ``cls.method`` comes from Keras itself (not a user's subclass overriding it)."""
    owner = next((c for c in cls.__mro__ if method in vars(c)), None)
    return owner is not None and owner.__module__.split(".")[0] == "keras"


def _operations(operation) -> list:
    """Every operation in ``operation``'s graph (layers and bare ops), Keras-built models expanded."""
    if isinstance(operation, keras.Model) and _defined_in_keras(type(operation), "call"):
        inner = getattr(operation, "operations", None) or operation.layers
        return [found for child in inner for found in _operations(child)]
    return [operation]


def unverified_layers(model) -> list[str]:
    """``"name (type)"`` for every layer or op whose backward pass guided backprop cannot vouch for.

    The guided rule is installed on Keras's ReLU layers and ReLU activations only. A
    ``Lambda``, a layer or subclassed model with its own ``call``, or a bare op in the graph
    may compute any function (``Lambda(keras.activations.silu)``, a hidden softmax):
    guided backprop would run through it unchanged and draw a wrong picture without a word.
    """
    found = []
    for operation in _operations(model):
        kind = type(operation).__name__
        if isinstance(operation, keras.layers.Lambda):
            function = getattr(operation, "function", None)
            found.append(f"{operation.name} (Lambda of {_activation_name(function)})")
        elif isinstance(operation, _WRAPPER_LAYERS):
            found.append(f"{operation.name} ({kind})")
        elif isinstance(operation, keras.layers.Layer):
            if not _defined_in_keras(type(operation), "call"):
                found.append(f"{operation.name} ({kind} with its own call)")
        elif kind not in _LINEAR_OPS:
            found.append(f"{operation.name} (op {kind})")
    return found


# model -> {allow_unverified_layers: the error to raise, or None}. A built model's layers do not
# change, so the verdict is worked out once (walking every layer costs milliseconds per pass).
_verdicts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _refuse_unguidable(model, allow_unverified_layers: bool) -> None:
    """Raise before anything is patched if guided backprop would give a wrong picture."""
    per_model = _verdicts.setdefault(model, {})
    if allow_unverified_layers not in per_model:
        per_model[allow_unverified_layers] = _unguidable(model, allow_unverified_layers)
    error = per_model[allow_unverified_layers]
    if error is not None:
        raise type(error)(*error.args)


def _unguidable(model, allow_unverified_layers: bool) -> Exception | None:
    """The error guided backprop must raise for ``model``, or None when it is safe."""
    bad = unsupported_activations(model)
    if bad:
        return UnsupportedActivationError(
            f"guided backpropagation is defined for ReLU networks, but {model.name!r} "
            f"uses other activations: {_shown(bad)}. Guided backprop would silently give a "
            "wrong picture here, so it is refused. Grad-CAM (grad_cam) works with any "
            "activation."
        )
    unverified = [] if allow_unverified_layers else unverified_layers(model)
    if unverified:
        return UnverifiedLayerError(
            f"guided backpropagation changes only Keras's ReLUs, and {model.name!r} has layers it "
            f"cannot look inside: {_shown(unverified)}; if they hold no activation other than "
            "ReLU, pass allow_unverified_layers=True, else use Grad-CAM (grad_cam), which works "
            "with any layer."
        )
    return None


def _shown(items: list[str]) -> str:
    return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")


@contextlib.contextmanager
def patched_activations(model, *, guided: bool, logits: bool = True, allow_unverified_layers: bool = False):
    """Temporarily change activations of ``model`` in place; always restored.

    Args:
        model: the Keras model (nested models included).
        guided: swap every ReLU/ReLU6 for :func:`guided_relu`.
        logits: make a final softmax/sigmoid the identity, so the model outputs
            the pre-activation class scores (what Grad-CAM differentiates).

        allow_unverified_layers: with ``guided``, accept ``Lambda`` layers, layers with their
            own ``call`` and bare ops, which the guided rule cannot see into (the caller vouches
            that they hold no non-ReLU activation).

    Raises:
        UnsupportedActivationError: ``guided`` and the model has other hidden
            activations (swish, gelu, tanh, ...), for which the guided rule is
            not defined; nothing is changed then.
        UnverifiedLayerError: ``guided`` and the model holds layers it cannot
            vouch for (see :func:`unverified_layers`), unless ``allow_unverified_layers``.
    """
    if guided:
        _refuse_unguidable(model, allow_unverified_layers)
    saved: list[tuple[object, str, object, bool]] = []

    def swap(layer, attribute, value):
        had_own = attribute in vars(layer)
        saved.append((layer, attribute, getattr(layer, attribute), had_own))
        object.__setattr__(layer, attribute, value)

    try:
        last = output_layer(model)
        for layer in flat_layers(model):
            if guided and isinstance(layer, keras.layers.ReLU):
                max_value = None if layer.max_value is None else float(layer.max_value)
                swap(layer, "call", lambda x, *a, _m=max_value, **k: guided_relu(x, _m))
            elif hasattr(layer, "activation") and callable(layer.activation):
                name = _activation_name(layer.activation)
                if guided and name == "relu":
                    swap(layer, "activation", guided_relu)
                elif guided and name == "relu6":
                    swap(layer, "activation", _guided_relu6)
                elif logits and layer is last and name in _OUTPUT_NONLINEARITIES:
                    swap(layer, "activation", _linear)
            if logits and layer is last and isinstance(layer, keras.layers.Softmax):
                swap(layer, "call", lambda x, *a, **k: x)
        yield model
    finally:
        for layer, attribute, value, had_own in reversed(saved):
            if had_own:
                object.__setattr__(layer, attribute, value)
            else:
                object.__delattr__(layer, attribute)

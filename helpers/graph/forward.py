"""A model's forward pass as the methods see it: logits (a final softmax bypassed), in batches.

Traced once per model. Also the NumPy softmax that turns those logits into
probabilities, so every layer above uses the same one.
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from ..errors import ModelError
from .activations import patched_activations
from .layers import flat_layers

# model -> traced forward pass (logits only), and how many images it takes at once.
_forward: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_limits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Models whose output has been seen not to be probabilities: no need to look again.
_outputs_logits: weakref.WeakSet = weakref.WeakSet()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (one vector or a batch).

    Args:
        logits: scores, shape ``(..., num_classes)``.

    Returns:
        float64 probabilities summing to 1 along the last axis.
    """
    # Subtracting the max keeps exp() from overflowing on large logits.
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def check_logits(model, logits: np.ndarray) -> None:
    """Refuse an output that is made of probabilities although every known softmax was bypassed.

    :func:`patched_activations` turns a final softmax *layer or activation* into the identity.
    A softmax it cannot see (in a ``Lambda``, a custom layer, a bare op) still makes the
    "logits" probabilities, and Grad-CAM of a probability is another method (``score='softmax'``).
    The logits are already computed: looking at their values costs nothing.

    Three outcomes, decided on the rows of one pass: a value outside [0, 1] or a row sum off 1
    by more than 1e-4 proves logits (the model is not looked at again); rows in [0, 1] summing
    to 1 with a value strictly between 0 and 1 in each are a softmax's (refused); one-hot rows
    such as (1, 0), which hand-made toy models give, decide nothing (looked at again next pass).
    """
    rows = np.asarray(logits, np.float64).reshape(-1, np.shape(logits)[-1])
    if model in _outputs_logits or rows.shape[-1] < 2:
        return
    in_range = ((rows >= 0) & (rows <= 1)).all(axis=-1)
    sums_to_one = np.abs(rows.sum(axis=-1) - 1.0) <= 1e-4
    if not (in_range & sums_to_one).all():
        _outputs_logits.add(model)
        return
    if not ((rows > 0) & (rows < 1)).any(axis=-1).all():
        return
    raise ModelError(
        f"model {model.name!r} outputs probabilities (every row in [0, 1], summing to 1): it ends in a "
        "softmax hidden from its layer types, e.g. inside a Lambda layer; remove it or give the model "
        "that outputs logits, keras.Model(model.input, model.layers[-2].output)."
    )


#: Memory the activations of one forward pass may take: larger batches are split.
ACTIVATION_BUDGET = 256 * 2**20


def batch_limit(model) -> int:
    """How many images one forward pass of ``model`` takes within ``ACTIVATION_BUDGET``.

    Estimated from the largest layer output (float32, about four such tensors
    alive at once): 5 images for VGG16 at 224x224, 13 for EfficientNet-Lite0.
    """
    if model not in _limits:
        largest = max(
            (
                int(np.prod(layer.output.shape[1:]))
                for layer in flat_layers(model)
                if getattr(layer, "output", None) is not None and None not in layer.output.shape[1:]
            ),
            default=1,
        )
        _limits[model] = max(1, ACTIVATION_BUDGET // (largest * 4 * 4))
    return _limits[model]


def logits(model, batch: np.ndarray) -> np.ndarray:
    """Pre-softmax scores of a preprocessed batch ``(N, H, W, 3)``: ``(N, num_classes)`` float32.

    Traced once per model (on a CPU, batches run about 3x faster than an eager
    call), with a final softmax/sigmoid made the identity, so a model that
    ends in a softmax still gives logits. Variables are read at each call, so
    changed weights (:mod:`helpers.sanity`) are seen without re-tracing.
    Batches larger than :func:`batch_limit` run in several passes.
    """
    run = _forward.get(model)
    if run is None:
        run = _forward[model] = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    batch = np.asarray(batch, np.float32)
    step = batch_limit(model)
    with patched_activations(model, guided=False, logits=True):
        result = np.concatenate([run(tf.constant(batch[i : i + step])).numpy() for i in range(0, len(batch), step)])
    check_logits(model, result)
    return result

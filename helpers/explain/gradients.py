"""One traced forward pass per image: logits, the feature map and its gradients.

Everything the methods need comes from one ``tf.function`` call:

* the logits (and the top-K classes, chosen inside the graph),
* the feature map ``A`` at the chosen layer,
* ``dy^c/dA`` for each requested class (plain backprop: Grad-CAM),
* optionally ``dy^c/dx``, with the guided ReLU rule (guided backprop) or
  plain (saliency).

The gradients w.r.t. ``A`` only run backward through the head, which is why
Grad-CAM costs little more than a forward pass, and why K classes cost little
more than one. Traces are cached per (model, layer, guided, score, K); guided
and plain traces are separate objects because a trace keeps whichever
activation was installed when it was traced.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..errors import ModelError, OptionError
from .activations import patched_activations, use_backward_rule
from .layers import flat_layers
from .split import feature_and_logits_model

SCORES = ("logit", "softmax")

# model -> {key: traced function}. Weak keys: a model that is gone takes its traces with it.
_traces: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# model -> traced forward pass (logits only), and how many images it takes at once.
_forward: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_limits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Models whose output has been seen not to be probabilities: no need to look again.
_outputs_logits: weakref.WeakSet = weakref.WeakSet()
# Counts gradient computations (tests use it to prove that widgets only redraw).
calls = {"gradients": 0}


@dataclass(frozen=True)
class Gradients:
    """NumPy results of one pass, for one image and K classes."""

    logits: np.ndarray  # (num_classes,)
    class_indices: np.ndarray  # (K,) int
    activations: np.ndarray  # (h, w, C)
    activation_gradients: np.ndarray  # (K, h, w, C), plain backprop
    input_gradients: np.ndarray | None  # (K, H, W, 3), guided or plain, model input order


def _trace(model, layer: str, input_rule: str | None, score: str, top_k: int | None, count: int):
    per_model = _traces.setdefault(model, {})
    # The number of classes is part of the key: the graph unrolls one gradient per class.
    key = (layer, input_rule, score, top_k, count)
    if key in per_model:
        return per_model[key]
    features_and_logits = feature_and_logits_model(model, layer)

    @tf.function
    def run(x, class_indices):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            activations, logits = features_and_logits(x, training=False)
            scores = logits if score == "logit" else tf.nn.softmax(logits)
            if top_k is not None:
                class_indices = tf.math.top_k(logits[0], k=top_k).indices
            targets = tf.gather(scores[0], class_indices)
            per_class = [targets[i] for i in range(targets.shape[0])]
        # Grad-CAM's weights always use plain backprop, even inside a guided pass.
        with use_backward_rule("plain"):
            d_activations = tf.stack([tape.gradient(t, activations)[0] for t in per_class])
        d_inputs = tf.zeros([0])
        if input_rule is not None:
            with use_backward_rule(input_rule):
                d_inputs = tf.stack([tape.gradient(t, x)[0] for t in per_class])
        return logits[0], class_indices, activations[0], d_activations, d_inputs

    per_model[key] = run
    return run


def check_score(score) -> str:
    """``score`` itself, once it is one of :data:`SCORES`."""
    if not isinstance(score, str) or score not in SCORES:
        raise OptionError(
            f"score must be 'logit' (the pre-softmax score, as in the Grad-CAM paper) or 'softmax' "
            f"(the probability), not {score!r}."
        )
    return score


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


def compute(
    model,
    x,
    layer: str,
    *,
    class_indices=None,
    top_k=None,
    guided=False,
    plain_inputs=False,
    score="logit",
    allow_unverified_layers=False,
) -> Gradients:
    """Run the (cached) traced pass on one preprocessed image ``x`` of shape (1, H, W, channels).

    Exactly one of ``class_indices`` (a sequence of ints) and ``top_k`` is given.
    ``guided`` adds guided input gradients; ``plain_inputs`` plain ones instead.
    ``allow_unverified_layers`` lets guided backprop run through layers it cannot
    look inside (see :func:`~helpers.explain.activations.unverified_layers`).

    Raises:
        OptionError: ``score`` is not one of :data:`SCORES`.
        ModelError: the model's output is probabilities from a softmax that could not be bypassed.
    """
    check_score(score)
    if (class_indices is None) == (top_k is None):
        raise ValueError("give exactly one of class_indices and top_k")
    if top_k is not None:
        indices = tf.zeros([top_k], tf.int32)  # shape only: the graph picks the classes
    else:
        indices = tf.constant(np.asarray(class_indices, dtype=np.int32).reshape(-1))
    input_rule = "guided" if guided else ("plain" if plain_inputs else None)
    run = _trace(model, layer, input_rule, score, top_k, int(indices.shape[0]))
    calls["gradients"] += 1
    with patched_activations(model, guided=guided, logits=True, allow_unverified_layers=allow_unverified_layers):
        logits, chosen, activations, d_activations, d_inputs = run(tf.constant(x, tf.float32), indices)
    check_logits(model, logits.numpy())
    return Gradients(
        logits=logits.numpy(),
        class_indices=chosen.numpy().astype(int),
        activations=activations.numpy(),
        activation_gradients=d_activations.numpy(),
        input_gradients=d_inputs.numpy() if input_rule else None,
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

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

from ..errors import OptionError
from ..graph.activations import patched_activations, use_backward_rule
from ..graph.forward import check_logits
from ..graph.split import feature_and_logits_model

SCORES = ("logit", "softmax")

# model -> {key: traced function}. Weak keys: a model that is gone takes its traces with it.
_traces: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
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


def _trace(model, layer: str | None, input_rule: str | None, score: str, top_k: int | None, count: int):
    per_model = _traces.setdefault(model, {})
    # The number of classes is part of the key: the graph unrolls one gradient per class.
    key = (layer, input_rule, score, top_k, count)
    if key in per_model:
        return per_model[key]
    if layer is None:
        # No feature map wanted (guided backprop, saliency): the input stands in for it,
        # so the trace needs no conv layer and no split of the model.
        def features_and_logits(x, training):
            return x, model(x, training=training)

    else:
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


def compute(
    model,
    x,
    layer: str | None,
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
    ``layer=None`` asks for no feature map: ``activations`` is then the input itself.
    ``guided`` adds guided input gradients; ``plain_inputs`` plain ones instead.
    ``allow_unverified_layers`` lets guided backprop run through layers it cannot
    look inside (see :func:`~helpers.graph.activations.unverified_layers`).

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

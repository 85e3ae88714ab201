r"""Notebook 08's exercise: Grad-CAM++'s channel weights from the feature map and its gradient.

The learner writes ``fn(activations, gradients)`` (both ``(h, w, K)``) and returns

    alpha_ij = g_ij^2 / (2 g_ij^2 + (sum_ab A_ab) g_ij^3)    (0 where the denominator is 0)
    w_k      = sum_ij alpha_ij ReLU(g_ij)

per channel, as :func:`helpers.explain.grad_cam_plus_plus_weights` computes it. At a
layer followed by global average pooling and one dense layer (EfficientNet-Lite0's
last conv layer, the real-model case) the gradient is the same at every position,
``v_k / Z``, and the weights reduce to ``ReLU(v_k) / (2 + mean(A^k) v_k)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .judging import Mistake, _ArrayExercise, _ints
from .real_inputs import _chelsea_gradients, _real_case_or_note
from .results import Case, CheckResult
from .verdict import check, register


def _reference_weights(activations, gradients) -> np.ndarray:
    from ..explain import grad_cam_plus_plus_weights

    return grad_cam_plus_plus_weights(activations, gradients)


def _variant(case: Case, *, local=False, two=2.0, relu=True, times_g=True, reduce="sum", normalise=False):
    """Grad-CAM++'s weights with one step changed: the known mistakes."""
    a = np.asarray(case.args[0], np.float64)
    g = np.asarray(case.args[1], np.float64)
    total = a if local else a.sum(axis=(0, 1), keepdims=True)
    denominator = two * g * g + total * g**3
    alpha = np.divide(g * g, denominator, out=np.zeros_like(g), where=denominator != 0)
    if normalise:
        sums = alpha.sum(axis=(0, 1), keepdims=True)
        alpha = np.divide(alpha, sums, out=np.zeros_like(alpha), where=sums != 0)
    terms = alpha * (np.maximum(g, 0) if relu else g) if times_g else alpha
    return terms.mean(axis=(0, 1)) if reduce == "mean" else terms.sum(axis=(0, 1))


@register
class _GradCamPlusPlusWeights(_ArrayExercise):
    name = "grad_cam_plus_plus_weights"
    title = "Grad-CAM++'s channel weights w_k"
    notebook = "08_layers_and_other_cams.ipynb"
    arg_names = ("activations", "gradients")
    what = "array of channel weights"
    hint = (
        "Per position: alpha = g^2 / (2 g^2 + S_k g^3), where S_k is the sum of channel k's activations "
        "over ALL positions (one number per channel), and alpha = 0 where the denominator is 0. Then "
        "w_k = the sum over the positions of alpha times ReLU(g): one weight per channel."
    )
    mistakes = (
        Mistake(
            "grad_cam",
            lambda c: np.asarray(c.args[1], np.float64).mean(axis=(0, 1)),
            "These are Grad-CAM's weights, the mean gradient of each channel. Grad-CAM++ weights each "
            "position by its own alpha_ij and keeps only the positive gradients.",
        ),
        Mistake(
            "no_relu",
            lambda c: _variant(c, relu=False),
            "You multiplied alpha by the gradient itself. Grad-CAM++ keeps only positive gradients: "
            "multiply by ReLU(g), so a position whose gradient is negative adds nothing.",
        ),
        Mistake(
            "local_sum",
            lambda c: _variant(c, local=True),
            "In the denominator you used the activation at the same position, A_ij. The formula sums "
            "channel k's activations over ALL positions, sum_ab A_ab: one number per channel.",
        ),
        Mistake(
            "no_two",
            lambda c: _variant(c, two=1.0),
            "The denominator is 2 g^2 + (sum_ab A_ab) g^3: you left out the factor 2.",
        ),
        Mistake(
            "alpha_only",
            lambda c: _variant(c, times_g=False),
            "You added up alpha alone. Multiply each position's alpha by ReLU(g) first, then sum.",
        ),
        Mistake(
            "mean",
            lambda c: _variant(c, reduce="mean"),
            "You averaged over the positions: your weights are h*w times too small. w_k is the SUM over "
            "i and j of alpha_ij ReLU(g_ij). (The map would look the same after dividing by its maximum, "
            "but w_k itself is defined as the sum.)",
        ),
        Mistake(
            "normalised_alpha",
            lambda c: _variant(c, normalise=True),
            "You divided each channel's alpha by its sum over the positions, as the authors' code does. "
            "The formula in the notebook (the paper's, and helpers') has no such step: "
            "w_k = sum_ij alpha_ij ReLU(g_ij).",
        ),
    )

    def cases(self, real_model=True, classifier=None, **_):
        def case(description, activations, gradients, **kw):
            activations = np.asarray(activations, np.float32)
            gradients = np.asarray(gradients, np.float32)
            return Case(description, (activations, gradients), _reference_weights(activations, gradients), **kw)

        rng = np.random.default_rng(41)
        per_channel = np.array([0.5, -1.0, 2.0, 0.0], np.float32)  # v_k / Z, the same at every position
        found = [
            case(
                "worked by hand: 2 x 2 positions, 1 channel, one gradient 0 (w = 7/24)",
                [[[1.0], [0.0]], [[2.0], [1.0]]],
                [[[1.0], [0.5]], [[-1.0], [0.0]]],
            ),
            case(
                "2 x 3 positions, 2 channels, small whole numbers",
                np.abs(_ints((2, 3, 2), seed=3, low=0, high=4)),
                _ints((2, 3, 2), seed=4, low=-2, high=3),
            ),
            case(
                "global average pooling: each channel's gradient is the same at every position",
                np.abs(_ints((3, 3, 4), seed=5, low=0, high=4)),
                np.broadcast_to(per_channel, (3, 3, 4)),
            ),
            case(
                "no positive gradient anywhere: every weight is 0",
                np.abs(_ints((2, 2, 3), seed=6, low=0, high=4)),
                -np.abs(_ints((2, 2, 3), seed=7, low=0, high=3)),
            ),
            case(
                "random 7 x 7 x 16 activations and gradients",
                np.maximum(rng.normal(size=(7, 7, 16)), 0),
                rng.normal(0.0, 0.01, size=(7, 7, 16)),
                show_inputs=False,
            ),
        ]
        notes = []
        if real_model:
            made, note = _real_case_or_note(
                lambda: case(
                    "the real model: EfficientNet-Lite0's last conv layer (global average pooling follows), "
                    "'tiger cat', 'chelsea' photo",
                    *_chelsea_gradients(classifier),
                    show_inputs=False,
                ),
                "EfficientNet-Lite0",
            )
            found += [made] if made else []
            notes += [note] if note else []
        return found, notes


def check_grad_cam_plus_plus_weights(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 08. ``fn(activations, gradients)`` (both ``(h, w, K)``) -> Grad-CAM++'s weights ``w`` ``(K,)``.

    ``alpha_ij = g^2 / (2 g^2 + (sum_ab A_ab) g^3)`` per channel (0 where the denominator is 0),
    ``w_k = sum_ij alpha_ij ReLU(g_ij)``: :func:`helpers.explain.grad_cam_plus_plus_weights`.
    """
    return check("grad_cam_plus_plus_weights", fn, **kwargs)

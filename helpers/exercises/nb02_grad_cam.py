"""Notebook 02's exercises: the channel weights alpha_k, then the whole Grad-CAM map."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .judging import (
    Mistake,
    _array_result,
    _ArrayExercise,
    _close,
    _difference,
    _Exercise,
    _ints,
    _scale_to_max,
    _show,
)
from .real_inputs import _chelsea_gradients, _real_case_or_note
from .results import Case, CaseResult, CheckResult
from .verdict import check, register


@register
class _ChannelWeights(_ArrayExercise):
    name = "channel_weights"
    title = "the channel weights alpha_k"
    notebook = "02_grad_cam.ipynb"
    arg_names = ("gradients",)
    what = "array of channel weights"
    hint = (
        "alpha_k is the average of the gradient over the h x w positions of channel k: one number per "
        "channel, with its sign (the 1/Z sum over i and j in the formula)."
    )
    mistakes = (
        Mistake(
            "sum",
            lambda c: c.args[0].sum(axis=(0, 1)),
            "Your weights are the SUM over the h x w positions, Z = h*w times the mean. Divide by the number "
            "of positions. (In the Grad-CAM map this constant cancels when the map is divided by its "
            "maximum, but alpha_k itself is defined as the mean.)",
        ),
        Mistake(
            "negated",
            lambda c: -c.args[0].mean(axis=(0, 1)),
            "Wrong sign: your weights are the negated mean gradients. alpha_k uses dy/dA as it is; the "
            "negated weights give the counterfactual map (notebook 05).",
        ),
        Mistake(
            "max",
            lambda c: c.args[0].max(axis=(0, 1)),
            "You took the largest gradient of each channel (global max pooling). Grad-CAM averages the "
            "gradient over all positions (global average pooling).",
        ),
        Mistake(
            "abs",
            lambda c: np.abs(c.args[0]).mean(axis=(0, 1)),
            "You averaged the absolute values. The sign matters: a negative alpha_k says that channel k "
            "speaks against the class.",
        ),
        Mistake(
            "relu",
            lambda c: np.maximum(c.args[0], 0).mean(axis=(0, 1)),
            "You dropped the negative gradients before averaging. Average all of them; the ReLU of Grad-CAM "
            "comes later, on the weighted sum of the channels.",
        ),
        Mistake(
            "channel_axis",
            lambda c: c.args[0].mean(axis=2),
            "You averaged over the channel axis (the last one) and got one number per position. Average "
            "over height and width instead (the first two axes): one number per channel.",
        ),
        Mistake(
            "height_only",
            lambda c: c.args[0].mean(axis=0),
            "You averaged over the height only (one axis). Average over height AND width.",
        ),
        Mistake(
            "width_only",
            lambda c: c.args[0].mean(axis=1),
            "You averaged over the width only (one axis). Average over height AND width.",
        ),
        Mistake(
            "keepdims",
            lambda c: c.args[0].mean(axis=(0, 1), keepdims=True),
            "Right values, but the shape is (1, 1, K): remove the two axes of length 1 so that alpha has shape (K,).",
        ),
        Mistake(
            "everything",
            lambda c: np.asarray(c.args[0].mean()),
            "You averaged over everything and got a single number. Grad-CAM needs one weight per channel.",
        ),
    )

    def cases(self, real_model=True, classifier=None, **_):
        from ..explain.maps import channel_weights

        def case(description, gradients, **kw):
            return Case(description, (gradients,), channel_weights(gradients), **kw)

        found = [
            case("2 x 3 x 4 gradients, small whole numbers", _ints((2, 3, 4), seed=1)),
            case(
                "a single position (1 x 1 x 3): the weights are the gradients themselves",
                np.array([[[0.5, -2.0, 3.0]]], np.float32),
            ),
            case("3 x 2 x 5 gradients that cancel in some channels", _ints((3, 2, 5), seed=7, low=-2, high=3)),
            case(
                "random 7 x 7 x 32 gradients",
                np.random.default_rng(3).normal(0.0, 0.01, (7, 7, 32)).astype(np.float32),
                show_inputs=False,
            ),
        ]
        notes = []
        if real_model:
            real, note = _real_case_or_note(
                lambda: case(
                    "the real model: EfficientNet-Lite0, gradients of the 'tiger cat' logit at its last "
                    "conv layer, 'chelsea' photo",
                    _chelsea_gradients(classifier)[1],
                    show_inputs=False,
                ),
                "EfficientNet-Lite0",
            )
            found += [real] if real else []
            notes += [note] if note else []
        return found, notes


def _weighted(activations, weights):
    return np.tensordot(activations.astype(np.float64), np.asarray(weights, np.float64), axes=([2], [0]))


def _cam_variant(activations, gradients, *, relu=True, normalise="max", sign=1.0, grad_relu=False):
    gradients = sign * gradients.astype(np.float64)
    if grad_relu:
        gradients = np.maximum(gradients, 0)
    raw = _weighted(activations, gradients.mean(axis=(0, 1)))
    if relu:
        raw = np.maximum(raw, 0)
    if normalise == "max":
        return _scale_to_max(raw)
    if normalise == "absmax":
        peak = float(np.max(np.abs(raw)))
        return raw / peak if peak > 0 else raw
    if normalise == "minmax":
        spread = float(raw.max() - raw.min())
        return (raw - raw.min()) / spread if spread > 0 else np.zeros_like(raw)
    return raw


@register
class _GradCamMap(_Exercise):
    name = "grad_cam_map"
    title = "the Grad-CAM map"
    notebook = "02_grad_cam.ipynb"
    arg_names = ("activations", "gradients")
    hint = (
        "Three steps: alpha = the mean gradient of each channel; the weighted sum of the channels "
        "sum_k alpha_k A^k (one number per cell); ReLU, then divide by the maximum. When nothing is "
        "positive the map is all zeros (avoid 0/0)."
    )
    raise_hints = (
        (
            "shapes",
            "The activations are (h, w, K) and alpha is (K,): sum over the channel axis K of "
            "alpha_k times A^k, which leaves (h, w).",
        ),
        (
            "broadcast",
            "The activations are (h, w, K) and alpha is (K,): sum over the channel axis K of "
            "alpha_k times A^k, which leaves (h, w).",
        ),
        ("unpack", "Return two things, the weights and the map: (alpha, L)."),
    )
    mistakes = (
        Mistake(
            "no_relu",
            lambda c: _cam_variant(*c.args, relu=False),
            "Missing ReLU: your map keeps the negative cells (evidence against the class). Grad-CAM keeps "
            "only positive evidence: set the negative cells of the weighted sum to 0 before dividing by the "
            "maximum.",
        ),
        Mistake(
            "no_relu_abs",
            lambda c: _cam_variant(*c.args, relu=False, normalise="absmax"),
            "Missing ReLU: your map keeps the negative cells (evidence against the class), scaled by the "
            "largest absolute value. Set the negative cells to 0 first, then divide by the maximum.",
        ),
        Mistake(
            "counterfactual",
            lambda c: _cam_variant(*c.args, sign=-1.0),
            "Wrong gradient sign: with -dy/dA you computed the counterfactual map (what speaks AGAINST the "
            "class, notebook 05). Use the gradients as they are.",
        ),
        Mistake(
            "grad_relu",
            lambda c: _cam_variant(*c.args, grad_relu=True),
            "You applied the ReLU to the gradients before averaging them. Grad-CAM averages all gradients "
            "(negative ones included) and applies the ReLU to the weighted sum of the channels.",
        ),
        Mistake(
            "not_normalised",
            lambda c: _cam_variant(*c.args, normalise=None),
            "Right shape and the ReLU is there, but the map is not scaled to [0, 1]: divide by its maximum "
            "(and leave an all-zero map as zeros).",
        ),
        Mistake(
            "minmax",
            lambda c: _cam_variant(*c.args, normalise="minmax"),
            "You scaled with (L - min) / (max - min). Grad-CAM divides by the maximum only, so a cell keeps "
            "the value 0 only when it has no positive evidence.",
        ),
        Mistake(
            "minmax_no_relu",
            lambda c: _cam_variant(*c.args, relu=False, normalise="minmax"),
            "You scaled with (S - min) / (max - min) without a ReLU: the weakest cell becomes 0 even when "
            "it holds positive evidence. Apply the ReLU, then divide by the maximum.",
        ),
        Mistake(
            "elementwise",
            lambda c: _scale_to_max(
                np.maximum((c.args[0].astype(np.float64) * c.args[1].astype(np.float64)).sum(axis=2), 0)
            ),
            "You multiplied gradients and activations position by position (gradient x activation). "
            "Grad-CAM first averages each channel's gradient over all positions, giving ONE weight per "
            "channel, then weights the whole channel A^k with it.",
        ),
    )

    def comparable(self, value):
        return value[1]  # mistakes are about the map

    def cases(self, real_model=True, classifier=None, **_):
        from ..explain.maps import grad_cam_map

        def case(description, activations, gradients, **kw):
            weights, heatmap, _ = grad_cam_map(activations, gradients)
            h, w = activations.shape[:2]
            return Case(description, (activations, gradients), (weights, heatmap), info={"Z": h * w}, **kw)

        a = np.stack([[[1, 0], [2, 1]], [[0, 3], [1, 0]]], axis=-1).astype(np.float32)
        g = np.stack([[[2, 0], [1, 1]], [[-1, 0], [-1, 0]]], axis=-1).astype(np.float32)
        positive = np.abs(_ints((4, 3, 3), seed=11, low=1, high=5))
        found = [
            case("2 x 2 cells, 2 channels: one cell of the weighted sum is negative", a, g),
            case("3 x 4 cells, 3 channels", np.abs(_ints((3, 4, 3), seed=5)), _ints((3, 4, 3), seed=6)),
            case(
                "nothing speaks for the class (every cell of the weighted sum < 0): the map is all zeros",
                np.abs(_ints((2, 3, 2), seed=8, low=1, high=4)),
                -np.abs(_ints((2, 3, 2), seed=9, low=1, high=3)),
            ),
            case(
                "every cell positive (the ReLU changes nothing)",
                positive,
                np.abs(_ints((4, 3, 3), seed=12, low=1, high=4)),
            ),
        ]
        notes = []
        if real_model:
            real, note = _real_case_or_note(
                lambda: case(
                    "the real model: EfficientNet-Lite0 at its last conv layer, 'tiger cat', 'chelsea' photo",
                    *_chelsea_gradients(classifier),
                    show_inputs=False,
                ),
                "EfficientNet-Lite0",
            )
            found += [real] if real else []
            notes += [note] if note else []
        return found, notes

    def judge(self, value, case: Case) -> CaseResult:
        weights_expected, map_expected = case.expected
        if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)):
            if isinstance(value, np.ndarray) and value.shape == map_expected.shape:
                return CaseResult(
                    case,
                    "type",
                    None,
                    "returned only the map",
                    "Your function returned one array, of the map's shape. Return two things: "
                    "the weights and the map, as (alpha, L).",
                )
            first = _array_result(value, map_expected, "map")
            detail = (
                first.detail
                if first.status == "type"
                else (
                    f"Your function returned {_show(np.asarray(value)) if first.value is not None else type(value).__name__}. "
                    "Return two things: the weights and the map, as (alpha, L)."
                )
            )
            return CaseResult(case, "type", None, "not a pair (alpha, L)", detail)
        if len(value) not in (2, 3):
            return CaseResult(
                case,
                "type",
                None,
                f"a {type(value).__name__} of {len(value)} items",
                f"Your function returned {len(value)} things; return two: (alpha, L).",
            )
        weights, heatmap = value[0], value[1]
        result = _array_result(heatmap, map_expected, "map")
        result.case = case
        if result.status != "ok":
            result.summary = "map: " + result.summary
            result.detail = result.detail.replace("The shape", "The map's shape", 1)
            result.value = (None, result.value)
            return result
        heatmap = result.value
        weight_result = _array_result(weights, weights_expected, "array of weights")
        notes = result.notes + [n for n in weight_result.notes if n not in result.notes]
        map_ok = _close(heatmap, map_expected)
        if not map_ok:
            result.status, result.summary = "values", "wrong map"
            result.detail = "Right: the map's shape and dtype. Wrong: its values. " + _difference(heatmap, map_expected)
            result.value = (weight_result.value, heatmap)
            return result
        if weight_result.status != "ok":
            return CaseResult(
                case,
                weight_result.status,
                (None, heatmap),
                "map right, alpha: " + weight_result.summary,
                "Your map is right. Your weights alpha are not: " + weight_result.detail,
                notes,
            )
        weights = weight_result.value
        result.value = (weights, heatmap)
        result.notes = notes
        if _close(weights, weights_expected):
            return result
        z = case.info["Z"]
        if _close(weights, z * weights_expected.astype(np.float64)):
            result.notes.append(
                "Note: your alpha is the SUM of the gradients over the positions, not their mean (Z = h*w "
                "times larger). Your map is still right: dividing by the maximum cancels any positive constant "
                "factor. The Grad-CAM paper defines alpha as the mean (1/Z times the sum), as helpers does."
            )
            return result
        return CaseResult(
            case,
            "values",
            (weights, heatmap),
            "map right, alpha wrong",
            "Your map is right, but your weights alpha are not the mean gradient of each channel. "
            + _difference(weights, weights_expected),
            notes,
        )

    def show_expected(self, case):
        return f"alpha: {_show(case.expected[0])}\n  L: {_show(case.expected[1])}"

    def show_value(self, value, case):
        weights, heatmap = value
        alpha = "" if weights is None else f"alpha: {_show(weights)}\n  "
        return alpha + f"L: {_show(heatmap)}"


def check_channel_weights(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 02. ``fn(gradients)``: gradients ``(h, w, K)`` -> ``alpha`` ``(K,)``, the mean gradient per channel."""
    return check("channel_weights", fn, **kwargs)


def check_grad_cam_map(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 02. ``fn(activations, gradients)`` (both ``(h, w, K)``) -> ``(alpha (K,), L (h, w))``.

    ``L = ReLU(sum_k alpha_k A^k)`` divided by its maximum (all zeros when nothing is positive).
    A sum instead of the mean for alpha gives the same map and is accepted with a note.
    """
    return check("grad_cam_map", fn, **kwargs)

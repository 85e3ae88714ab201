"""Notebook 03's exercise: the gradient a guided ReLU (or ReLU6) passes down to its input.

The learner writes ``fn(x, upstream, max_value=None)``. The plain ReLU cases call it with
two arguments (forward mask ``x > 0``); the ReLU6 cases add ``max_value=6.0`` as a third
(forward mask ``0 < x < 6``: above 6 the unit is flat). The backward mask is
``upstream > 0`` in both. The real-model case is EfficientNet-Lite0's last activation,
a ReLU6, and is judged by the rule read from that layer.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import numpy as np

from .judging import Mistake, _ArrayExercise
from .real_inputs import _chelsea_relu_inputs, _real_case_or_note
from .results import Case, CheckResult
from .verdict import check, register


def _reference_guided_relu_gradient(x: np.ndarray, upstream: np.ndarray, max_value=None) -> np.ndarray:
    """The gradient helpers' guided ReLU (ReLU6 with ``max_value=6``) passes down, computed with TensorFlow."""
    import tensorflow as tf

    from ..graph.activations import guided_relu, use_backward_rule

    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        y = guided_relu(x_tensor, max_value)
    with use_backward_rule("guided"):
        gradient = tape.gradient(y, x_tensor, output_gradients=tf.constant(upstream))
    return gradient.numpy() + np.float32(0.0)  # + 0: no "-0." in the verdict


def _max_value(case: Case):
    """The case's ``max_value``: None for a plain ReLU case (called with two arguments)."""
    return case.args[2] if len(case.args) > 2 else None


def _below(case: Case, inclusive: bool = False) -> np.ndarray:
    """The upper half of the forward mask: ``x < max_value`` (all True for a plain ReLU)."""
    x, limit = case.args[0], _max_value(case)
    if limit is None:
        return np.ones(x.shape, bool)
    return x <= limit if inclusive else x < limit


def _on(case: Case) -> np.ndarray:
    """The right forward mask of the case: ``x > 0``, or ``0 < x < max_value`` for a ReLU6."""
    return (case.args[0] > 0) & _below(case)


def _rule(max_value) -> str:
    """The rule of a case, in words."""
    if max_value is None:
        return "a plain ReLU (called with two arguments): forward mask x > 0, backward mask upstream > 0"
    return (
        f"a ReLU6 (called with max_value={max_value:g} as the third argument): forward mask "
        f"0 < x < {max_value:g}, backward mask upstream > 0"
    )


@register
class _GuidedReluGradient(_ArrayExercise):
    name = "guided_relu_gradient"
    title = "the guided ReLU gradient rule"
    notebook = "03_guided_backprop.ipynb"
    arg_names = ("x", "upstream", "max_value")
    what = "gradient"
    hint = (
        "A ReLU passes the gradient from above (upstream) down to its input only where two things hold: "
        "the unit was on in the forward pass (x > 0; for a ReLU6, max_value=6, 0 < x < 6) and the "
        "gradient from above is positive. Everywhere else it passes 0."
    )
    raise_hints = (
        (
            "positional argument",
            "The plain ReLU cases call your function with two arguments, (x, upstream); the ReLU6 cases "
            "add a third, max_value=6. Give it the parameters (x, upstream, max_value=None), and use the "
            "upper limit only when max_value is not None.",
        ),
    )
    mistakes = (
        Mistake(
            "plain",
            lambda c: c.args[1] * _on(c),
            "You kept only the forward mask [x > 0] (for a ReLU6 [0 < x < 6]): that is plain "
            "backpropagation through the unit. Guided backprop also needs the backward mask "
            "[upstream > 0], so negative gradients from above are blocked too.",
        ),
        Mistake(
            "deconvnet",
            lambda c: c.args[1] * (c.args[1] > 0),
            "You kept only the backward mask [upstream > 0]: that is the 'deconvnet' rule (Zeiler & Fergus). "
            "Guided backprop also needs the forward mask [x > 0]: no gradient where the unit was off.",
        ),
        Mistake(
            "negated",
            lambda c: -_reference_guided_relu_gradient(*c.args),
            "Wrong gradient sign: your result is the right one times -1. Pass the upstream gradient on as "
            "it is, without negating it.",
        ),
        Mistake(
            "relu6_as_relu",
            lambda c: c.args[1] * ((c.args[0] > 0) & (c.args[1] > 0)),
            "On the ReLU6 cases you used the plain ReLU's forward mask x > 0, so the gradient passes where "
            "x >= 6. A ReLU6 is flat there (its output stays 6, whatever x does), so nothing passes: its "
            "forward mask is 0 < x < max_value. Use the third argument, max_value.",
        ),
        Mistake(
            "clipped_always",
            lambda c: c.args[1] * ((c.args[0] > 0) & (c.args[0] < 6) & (c.args[1] > 0)),
            "You block the gradient where x >= 6 in a plain ReLU case too. Only a ReLU6 (max_value=6) is "
            "flat above 6; a plain ReLU (max_value=None, or no third argument) has no upper limit.",
        ),
        Mistake(
            "at_max",
            lambda c: c.args[1] * ((c.args[0] > 0) & _below(c, inclusive=True) & (c.args[1] > 0)),
            "Almost: on the ReLU6 cases your result differs only where x == 6. There the unit is already "
            "flat (a little more x leaves its output at 6), and its gradient is taken as 0: use "
            "x < max_value, not x <= max_value.",
        ),
        Mistake(
            "at_zero",
            lambda c: c.args[1] * ((c.args[0] >= 0) & _below(c) & (c.args[1] > 0)),
            "Almost: your result differs only where x == 0. A ReLU's output does not change when x, "
            "exactly 0, moves a little to the left, and its gradient there is taken as 0: use x > 0, not "
            "x >= 0.",
        ),
        Mistake(
            "either",
            lambda c: c.args[1] * (_on(c) | (c.args[1] > 0)),
            "You let the gradient through where EITHER condition holds. Guided backprop needs BOTH: x > 0 "
            "and upstream > 0.",
        ),
        Mistake(
            "masked_x",
            lambda c: c.args[0] * (_on(c) & (c.args[1] > 0)),
            "You multiplied the forward input x by the masks. What flows down is the upstream gradient, "
            "masked: the masks decide where it passes, x only decides the forward mask.",
        ),
        Mistake(
            "mask_only",
            lambda c: (_on(c) & (c.args[1] > 0)).astype(np.float32),
            "You returned the mask itself (1 where the gradient passes, 0 elsewhere). Multiply the upstream "
            "gradient by it.",
        ),
        Mistake(
            "forward",
            lambda c: np.clip(c.args[0], 0, _max_value(c)),
            "You returned ReLU(x), the forward output. The exercise asks for the gradient passed DOWN to x.",
        ),
        Mistake(
            "times_x",
            lambda c: c.args[1] * c.args[0] * (_on(c) & (c.args[1] > 0)),
            "You multiplied by x as well. The ReLU's slope is 1 where it is on, so the gradient passes "
            "unchanged (masked), not scaled by x.",
        ),
    )

    def explain_case(self, case: Case) -> str:
        return textwrap.fill(f"This case is {_rule(_max_value(case))}.", 98, subsequent_indent="  ")

    def cases(self, real_model=True, classifier=None, **_):
        def case(description, x, upstream, max_value=None, **kw):
            x, upstream = np.asarray(x, np.float32), np.asarray(upstream, np.float32)
            args = (x, upstream) if max_value is None else (x, upstream, float(max_value))
            return Case(description, args, _reference_guided_relu_gradient(*args), **kw)

        rng = np.random.default_rng(21)
        big_x = rng.normal(size=(4, 5, 6)).astype(np.float32)
        big_up = rng.normal(size=(4, 5, 6)).astype(np.float32)
        wide_x = np.round(rng.uniform(-2.0, 10.0, size=(3, 4, 5)), 1).astype(np.float32)
        wide_up = rng.normal(size=(3, 4, 5)).astype(np.float32)
        found = [
            case("ReLU, notebook 03's example: 5 units", [-2.0, -0.5, 0.5, 2.0, 3.0], [1.0, 1.0, 1.0, -1.0, 0.5]),
            case(
                "ReLU, 3 x 4 values with zeros in x and in the upstream gradient",
                [[0.0, 1.5, -1.0, 2.0], [0.0, -0.5, 0.0, 3.0], [1.0, 2.0, -2.0, 0.5]],
                [[2.0, 0.0, 1.0, -3.0], [-1.0, 4.0, 0.0, 2.0], [0.5, -0.5, 1.5, 1.0]],
            ),
            case(
                "ReLU, every unit on (x > 0), the gradient from above of both signs",
                [[0.5, 1.0, 2.0], [3.0, 0.25, 4.0]],
                [[1.0, -2.0, 3.0], [-0.5, 2.5, -1.0]],
            ),
            case(
                "ReLU, the gradient from above is negative everywhere: nothing passes",
                [[1.0, -1.0], [2.0, 0.5]],
                [[-1.0, -2.0], [-0.5, -3.0]],
            ),
            case(
                "ReLU, no upper limit: units at x = 7, 9 and 12 are on",
                [-1.0, 3.0, 7.0, 9.0, 12.0],
                [1.0, 1.0, 1.0, 2.0, -1.0],
            ),
            case("ReLU, random 4 x 5 x 6 values", big_x, big_up, show_inputs=False),
            case(
                "ReLU6 (max_value=6): units at and above 6 are flat, nothing passes there",
                [-1.0, 0.0, 0.5, 5.5, 6.0, 7.5, 9.0, 3.0],
                [1.0, 2.0, 1.0, 2.0, 1.0, 1.0, -1.0, -2.0],
                max_value=6.0,
            ),
            case("ReLU6 (max_value=6), random 3 x 4 x 5 values from -2 to 10", wide_x, wide_up, 6.0, show_inputs=False),
        ]
        notes = []
        if real_model:

            def real():
                x, upstream, max_value = _chelsea_relu_inputs(classifier)
                if max_value is None:
                    unit = "a plain ReLU (forward mask x > 0)"
                else:
                    unit = f"a ReLU{max_value:g} (max_value={max_value:g}: forward mask 0 < x < {max_value:g})"
                return case(
                    f"the real model: the input of EfficientNet-Lite0's last activation, {unit}, and the "
                    "'tiger cat' gradient arriving at its output, 'chelsea' photo",
                    x,
                    upstream,
                    max_value,
                    show_inputs=False,
                )

            made, note = _real_case_or_note(real, "EfficientNet-Lite0")
            found += [made] if made else []
            notes += [note] if note else []
        return found, notes


def check_guided_relu_gradient(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 03. ``fn(x, upstream, max_value=None)`` -> the gradient a guided ReLU passes down to ``x``.

    ``x`` and ``upstream`` have one shape, and so does the result. The plain ReLU cases call
    ``fn(x, upstream)`` (forward mask ``x > 0``); the ReLU6 cases, the real model's among them,
    call ``fn(x, upstream, 6.0)`` (forward mask ``0 < x < 6``). The backward mask is
    ``upstream > 0`` in both.
    """
    return check("guided_relu_gradient", fn, **kwargs)

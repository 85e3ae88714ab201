"""Notebook 07's exercise: the area under a deletion (or insertion) curve, by the trapezoid rule.

The learner writes ``fn(fractions, scores)``: ``fractions`` ``f_0 = 0 < ... < f_n = 1``
of the pixels removed, ``scores`` the class's probability ``p(f_i)`` at each, and returns

    AUC = sum_i (p(f_(i-1)) + p(f_i)) / 2 * (f_i - f_(i-1)),

one number, as :func:`helpers.metrics.auc` computes it. The steps need not be equal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import real_inputs
from .judging import Mistake, _a, _ArrayExercise
from .real_inputs import _real_case_or_note
from .results import Case, CaseResult, CheckResult
from .verdict import check, register


def _reference_auc(fractions, scores) -> float:
    from ..metrics import auc

    return auc(fractions, scores)


def _f64(case: Case):
    return np.asarray(case.args[0], np.float64), np.asarray(case.args[1], np.float64)


def _heights(case: Case) -> np.ndarray:
    """The trapezoids' heights: the mean of the two ends of each step."""
    _, p = _f64(case)
    return (p[:-1] + p[1:]) / 2


def _widths(case: Case) -> np.ndarray:
    f, _ = _f64(case)
    return np.diff(f)


@register
class _DeletionAuc(_ArrayExercise):
    name = "deletion_auc"
    title = "the area under a deletion curve"
    notebook = "07_faithfulness_and_localization.ipynb"
    arg_names = ("fractions", "scores")
    what = "area (one number)"
    hint = (
        "The trapezoid rule: for each step from f_(i-1) to f_i, the height is the mean of the scores at "
        "its two ends, (p(f_(i-1)) + p(f_i)) / 2, and the width f_i - f_(i-1); add up height times width "
        "over all steps. The steps need not be equal, so take each width from the fractions."
    )
    mistakes = (
        Mistake(
            "per_step",
            lambda c: _heights(c) * _widths(c),
            "You returned the area of each step. Add them up: the AUC is one number.",
        ),
        Mistake(
            "swapped",
            lambda c: float(np.trapezoid(*_f64(c))),
            "You integrated the fractions over the scores: np.trapezoid(y, x) takes the values first and "
            "the points they lie at second, so the area under p(f) is np.trapezoid(scores, fractions).",
        ),
        Mistake(
            "no_width",
            lambda c: float(_heights(c).sum()),
            "You added up the trapezoids' heights but did not multiply each by its width f_i - f_(i-1): "
            "with equal steps your area is the number of steps times too large.",
        ),
        Mistake(
            "equal_steps",
            lambda c: float(_heights(c).mean()),
            "You assumed that all steps are equally wide (1/n each). Here they are not: weight each "
            "trapezoid by its own width f_i - f_(i-1).",
        ),
        Mistake(
            "mean",
            lambda c: float(_f64(c)[1].mean()),
            "You averaged the scores, giving every point the same weight. In the trapezoid rule the two end "
            "points count half (each lies on one step only) and each step counts by its width.",
        ),
        Mistake(
            "left",
            lambda c: float((_f64(c)[1][:-1] * _widths(c)).sum()),
            "You took the score at the LEFT end of each step as its height (a Riemann sum). The trapezoid's "
            "height is the mean of both ends: (p(f_(i-1)) + p(f_i)) / 2.",
        ),
        Mistake(
            "right",
            lambda c: float((_f64(c)[1][1:] * _widths(c)).sum()),
            "You took the score at the RIGHT end of each step as its height (a Riemann sum). The "
            "trapezoid's height is the mean of both ends: (p(f_(i-1)) + p(f_i)) / 2.",
        ),
        Mistake(
            "sum",
            lambda c: float(_f64(c)[1].sum()),
            "You added up the scores. The area weights each step by its width and the ends of each step by "
            "one half: the trapezoid rule.",
        ),
        Mistake(
            "one_minus",
            lambda c: 1.0 - _reference_auc(*c.args),
            "You returned 1 - AUC. Return the area under the curve itself; 'lower is better' (for "
            "deletion) is how the number is read, not part of it.",
        ),
    )

    def judge(self, value, case: Case) -> CaseResult:
        note = None
        if isinstance(value, (list, tuple, np.ndarray)):
            try:
                array = np.asarray(value)
            except Exception:
                array = None
            if array is not None and array.dtype.kind in "biuf" and array.ndim >= 1 and array.size == 1:
                note = (
                    f"Note: your function returned {_a(type(value).__name__)} holding one number; the check "
                    "took that number. The area is a single float: `return float(area)` says so."
                )
                value = array.reshape(())
        result = super().judge(value, case)
        if note is not None:
            result.notes.insert(0, note)
        return result

    def cases(self, real_model=True, classifier=None, image=None, **_):
        def case(description, fractions, scores, **kw):
            fractions, scores = np.asarray(fractions, np.float64), np.asarray(scores, np.float64)
            return Case(description, (fractions, scores), np.asarray(_reference_auc(fractions, scores)), **kw)

        even = np.linspace(0.0, 1.0, 5)
        found = [
            case("a straight fall from 1 to 0 in 2 steps: area 1/2", [0.0, 0.5, 1.0], [1.0, 0.5, 0.0]),
            case("a fast fall, p = 0.9 then 0.1 and 0.1, in 2 steps", [0.0, 0.5, 1.0], [0.9, 0.1, 0.1]),
            case("a flat curve, p = 0.4 at 5 points: area 0.4", even, [0.4] * 5),
            case(
                "uneven steps: f = 0, 0.1, 0.25, 0.5, 1",
                [0.0, 0.1, 0.25, 0.5, 1.0],
                [0.8, 0.4, 0.2, 0.1, 0.05],
            ),
            case("an insertion curve: p rises from 0.05 to 0.7 in 4 steps", even, [0.05, 0.2, 0.5, 0.6, 0.7]),
        ]
        notes = []
        if real_model:
            made, note = _real_case_or_note(
                lambda: case(
                    "the real model: EfficientNet-Lite0's deletion curve of Grad-CAM for 'bull mastiff' on "
                    "'cat_dog', 20 steps (21 points)",
                    *real_inputs._cat_dog_deletion_curve(classifier, image),
                    show_inputs=False,
                ),
                "EfficientNet-Lite0 on 'cat_dog'",
            )
            found += [made] if made else []
            notes += [note] if note else []
        return found, notes


def check_deletion_auc(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 07. ``fn(fractions (n+1,), scores (n+1,))`` -> the area under the curve, one float.

    The trapezoid rule, ``sum_i (p_(i-1) + p_i) / 2 * (f_i - f_(i-1))``, as :func:`helpers.metrics.auc`;
    ``fractions`` run from 0 to 1, not necessarily in equal steps.
    """
    return check("deletion_auc", fn, **kwargs)

"""Judging an answer: comparing it with the reference, showing values, naming a known mistake.

:class:`_Exercise` is what every exercise is: its cases, how to judge a result,
its known mistakes (:class:`Mistake`: a wrong answer it recognises and explains).
:class:`_ArrayExercise` judges an answer that is one float array: type, shape,
dtype, finiteness, then the values, each with its own message.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import Case, CaseResult

RTOL = 1e-4


# --------------------------------------------------------------------------
# Comparing and showing values
# --------------------------------------------------------------------------


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _close(got, expected) -> bool:
    """Same shape, all finite, equal within a relative tolerance."""
    try:
        got = np.asarray(got, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return False
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return bool(np.allclose(got, expected, rtol=RTOL, atol=max(1e-5 * scale, 1e-7)))


def _show(value, indent: str = "    ") -> str:
    """A value for the verdict: small arrays in full (4 digits), large ones summarised."""
    if isinstance(value, np.ndarray):
        head = f"shape {value.shape}, {value.dtype}"
        if value.dtype.kind in "biuf" and value.size <= 40:
            shown = value + 0 if value.dtype.kind == "f" else value  # no "-0."
            body = np.array2string(shown, precision=4, suppress_small=True, max_line_width=88, separator=" ")
            return head + "\n" + textwrap.indent(body, indent)
        if value.dtype.kind in "biuf" and value.size:
            finite = value[np.isfinite(value)] if value.dtype.kind == "f" else value
            if finite.size:
                return head + f", values from {float(finite.min()):.4g} to {float(finite.max()):.4g}"
        return head
    return repr(value)


def _difference(got: np.ndarray, expected: np.ndarray) -> str:
    """Where two same-shaped arrays differ: how many values, the first position, both values."""
    got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
    scale = float(np.max(np.abs(expected64))) if expected64.size else 0.0
    bad = ~np.isclose(got64, expected64, rtol=RTOL, atol=max(1e-5 * scale, 1e-7))
    count = int(bad.sum())
    if not count:
        return ""
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = first if len(first) != 1 else f"({first[0]},)"
    return (
        f"{count} of {bad.size} values differ; the first at index {where}: "
        f"expected {expected64[first]:.4g}, you returned {got64[first]:.4g}."
    )


# --------------------------------------------------------------------------
# The exercise machinery
# --------------------------------------------------------------------------


@dataclass
class Mistake:
    """A known wrong answer: what it returns for a case, and what to tell the student."""

    name: str
    result: Callable[[Case], Any]  # from the case's inputs to that wrong answer
    message: str


class _Exercise:
    """One exercise: its cases, how to judge a result, its known mistakes."""

    name = ""
    title = ""
    notebook = ""
    arg_names: tuple = ()
    hint = ""
    raise_hints: tuple = ()  # (substring of the exception text, hint)
    mistakes: tuple = ()

    # -- to be given by each exercise ------------------------------------------------
    def cases(self, real_model: bool, **context) -> list:
        raise NotImplementedError

    def judge(self, value, case: Case) -> CaseResult:
        raise NotImplementedError

    def comparable(self, value):
        """The part of a converted result that mistakes are compared with."""
        return value

    def matches(self, got, candidate) -> bool:
        return _close(got, candidate)

    def show_value(self, value, case: Case) -> str:
        return _show(value)

    def show_expected(self, case: Case) -> str:
        return _show(case.expected)

    def explain_case(self, case: Case) -> str:
        """Extra lines about a failing case (beyond inputs/expected/returned)."""
        return ""

    # -- shared --------------------------------------------------------------------------
    def diagnose(self, results: list) -> str | None:
        """The known mistake that explains every answer the function gave; else one that explains the first wrong one."""
        answered = [r for r in results if r.status not in ("raised", "timeout", "not run", "type")]
        if not answered:
            return None
        first_wrong = next((r for r in answered if not r.ok), None)
        if first_wrong is None:
            return None
        fallback = None
        for mistake in self.mistakes:
            explains_all = True
            for r in results:
                if r.status in ("timeout", "not run"):
                    continue
                try:
                    candidate = mistake.result(r.case)
                except Exception:
                    candidate = _RAISES
                if r.status in ("raised", "type"):
                    same = candidate is _RAISES if r.status == "raised" else False
                else:
                    same = candidate is not _RAISES and self.matches(self.comparable(r.value), candidate)
                if not same:
                    explains_all = False
                if r is first_wrong and same and fallback is None:
                    fallback = mistake
            if explains_all:
                return mistake.message
        return fallback.message if fallback is not None else None


_RAISES = object()


def _array_result(value, expected: np.ndarray, what: str = "result") -> CaseResult:
    """Convert and check type, shape, dtype and finiteness of an array result.

    Returns a CaseResult whose ``status`` is ``"ok"`` when the value is a float array of the
    expected shape holding only finite numbers (its values still to be compared).
    """
    notes = []
    if value is None:
        return CaseResult(
            None, "type", None, "returned None", "Your function returned None. Is the `return` statement missing?"
        )
    if value is Ellipsis:
        return CaseResult(
            None,
            "type",
            None,
            "returned ... (the stub)",
            "Your function returned `...` (Ellipsis): the stub is not filled in yet. "
            "Replace `...` with your computation.",
        )
    if isinstance(value, (str, bytes, dict, set)) or callable(value):
        return CaseResult(
            None,
            "type",
            None,
            f"returned a {type(value).__name__}",
            f"Your function returned a {type(value).__name__}; the {what} should be a NumPy array "
            f"of shape {expected.shape}.",
        )
    if not isinstance(value, np.ndarray):
        try:
            converted = np.asarray(value)
        except Exception:
            converted = None
        if converted is None or converted.dtype == object:
            return CaseResult(
                None,
                "type",
                None,
                f"returned a {type(value).__name__}",
                f"Your function returned a {type(value).__name__}, which is not an array of numbers; "
                f"the {what} should be a NumPy array of shape {expected.shape}.",
            )
        if isinstance(value, (int, float, np.generic)):
            pass  # a single number: the shape check below says what is wrong
        else:
            notes.append(
                f"Note: your function returned {_a(type(value).__name__)}, not a NumPy array; the check "
                "converted it with np.asarray. That is fine: the values are what count."
            )
        value = converted
    if value.dtype.kind not in "biuf":
        return CaseResult(
            None,
            "type",
            None,
            f"returned an array of {value.dtype}",
            f"Your function returned an array of dtype {value.dtype}; the {what} should hold real numbers (float32).",
        )
    if value.shape != expected.shape:
        result = CaseResult(
            None,
            "shape",
            value,
            f"wrong shape {value.shape}",
            f"The shape is wrong: expected {expected.shape}, you returned {value.shape}.",
        )
        result.notes = notes
        return result
    if value.dtype.kind != "f":
        result = CaseResult(
            None,
            "dtype",
            value,
            f"wrong dtype {value.dtype}",
            f"The shape {value.shape} is right, but the dtype is {value.dtype}: the {what} should "
            f"hold real numbers (expected {expected.dtype}). True/False or whole numbers are "
            "not gradients.",
        )
        result.notes = notes
        return result
    bad = ~np.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kinds = " and ".join(
            k for k, present in (("NaN", np.isnan(value).any()), ("infinity", np.isinf(value).any())) if present
        )
        result = CaseResult(
            None,
            "nonfinite",
            value,
            f"{kinds} in the result",
            f"The shape {value.shape} is right, but {int(bad.sum())} of {value.size} values are "
            f"{kinds} (the first at index {first}). A division by zero (0/0 gives NaN)?",
        )
        result.notes = notes
        return result
    return CaseResult(None, "ok", value, "", "", notes)


class _ArrayExercise(_Exercise):
    """An exercise whose answer is one float array, compared with the reference."""

    what = "result"

    def equivalent(self, value: np.ndarray, case: Case) -> str | None:
        """A note when ``value`` differs from the reference but is an accepted equivalent."""
        return None

    def judge(self, value, case: Case) -> CaseResult:
        result = _array_result(value, case.expected, self.what)
        result.case = case
        if result.status != "ok":
            return result
        if _close(result.value, case.expected):
            return result
        note = self.equivalent(result.value, case)
        if note is not None:
            result.notes.append(note)
            return result
        result.status, result.summary = "values", "wrong values"
        result.detail = f"Right: the shape {result.value.shape} and a float dtype. Wrong: the values. " + _difference(
            result.value, case.expected
        )
        return result


# --------------------------------------------------------------------------
# Small helpers the exercises share
# --------------------------------------------------------------------------


def _ints(shape, seed, low=-3, high=4):
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(np.float32)


def _scale_to_max(raw):
    peak = float(np.max(raw))
    return raw / peak if peak > 0 else np.zeros_like(raw)


def _share(heatmap, box) -> float:
    from ..metrics import pointing_game_energy

    return pointing_game_energy(heatmap, box)

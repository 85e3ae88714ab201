"""Exercises with instant feedback: check a function you wrote against ``helpers``.

At the end of notebooks 02-05 you write one small function, then check it::

    from helpers.exercises import check_channel_weights

    def my_channel_weights(gradients):
        ...                                   # your code

    check_channel_weights(my_channel_weights)

The check runs your function on a few small hand-made inputs and on real inputs
from EfficientNet-Lite0 (the offline model, so the verdict is the same on every
machine), compares each result with the reference implementation in
``helpers``, and prints a short verdict: which cases are right; for the first
wrong one, the inputs, the expected values and yours; what the mistake
probably is; a hint. It never shows solution code. It also returns a
:class:`CheckResult` (``result.passed``, ``result.message``, ``result.notes``).

The exercises (``EXERCISES``):

=========================  ==========  ==============================================
name                       notebook    your function
=========================  ==========  ==============================================
``channel_weights``        02          ``(gradients (h, w, K)) -> alpha (K,)``
``grad_cam_map``           02          ``(activations, gradients) -> (alpha, L)``
``guided_relu_gradient``   03          ``(x, upstream) -> gradient into the ReLU``
``guided_grad_cam``        04          ``(guided (H, W, 3), cam (H, W)) -> (H, W, 3)``
``class_for_region``       05          ``(explanations, box) -> class index``
``marker_share``           09          ``(maps (n, H, W), box) -> mean share in the box``
=========================  ==========  ==============================================

Robustness: your function runs in a worker thread with a time limit (5 s per
case by default). If it raises, the verdict names the exception and the line,
without a traceback; wrong types, shapes, dtypes, NaN and infinity are
reported as such. A function that does not return in time is interrupted (an
exception is raised inside the thread, which stops pure-Python loops); code
stuck inside one long C call (a huge NumPy operation, ``time.sleep``) cannot be
interrupted by any means short of killing the kernel, so it keeps running in
the background until it returns; the verdict says so, and restarting the
kernel frees it. (A subprocess could be killed, but forking a kernel that has
TensorFlow loaded is unsafe, and these exercises are NumPy one-liners.)
Your function gets copies of the inputs, so changing them in place cannot
spoil the check; the verdict notes it if you do.
"""

from __future__ import annotations

import ctypes
import dataclasses
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "EXERCISES",
    "Case",
    "CheckResult",
    "check",
    "check_channel_weights",
    "check_class_for_region",
    "check_grad_cam_map",
    "check_guided_grad_cam",
    "check_guided_relu_gradient",
    "check_marker_share",
]

#: Seconds each case may take before the student's function is interrupted.
DEFAULT_TIMEOUT = 5.0
RTOL = 1e-4
OK, FAIL = "✓", "✗"


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass
class Case:
    """One input for the student's function and the reference answer for it.

    Attributes:
        description: what the case is, in a few words (shown in the verdict).
        args: the positional arguments (copied before every call).
        expected: the reference result, from ``helpers``.
        show_inputs: print the inputs when this case fails (small hand-made ones).
        info: anything the exercise's messages need (e.g. ``Z`` = h * w).
    """

    description: str
    args: tuple
    expected: Any
    show_inputs: bool = True
    info: dict = field(default_factory=dict)


@dataclass
class CaseResult:
    """What happened on one case."""

    case: Case
    status: str  # ok | raised | timeout | type | shape | dtype | nonfinite | values | not run
    value: Any = None  # the converted result (None when there is none)
    summary: str = ""  # a few words for the list of cases
    detail: str = ""  # the paragraph shown for the first failing case
    notes: list = field(default_factory=list)
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class CheckResult:
    """The verdict of one check.

    Attributes:
        exercise: the exercise's name.
        passed: every case gave the expected result (notes allowed).
        message: the verdict, as printed.
        notes: remarks on an accepted answer (an equivalent form, a converted type).
        cases: ``(description, status)`` per case; status ``"ok"`` or what went wrong.
    """

    exercise: str
    passed: bool
    message: str
    notes: tuple = ()
    cases: tuple = ()
    _printed: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"CheckResult(exercise={self.exercise!r}, passed={self.passed})"

    def _ipython_display_(self):
        # The check has already printed the verdict: showing it again as the cell's value
        # would print it twice. Displayed later on its own (``result`` in a new cell), it prints.
        if self._printed:
            self._printed = False
            return
        print(self.message)


# --------------------------------------------------------------------------
# Running the student's function safely
# --------------------------------------------------------------------------


class _StopStudentCode(BaseException):
    """Raised inside a student's thread that ran over its time limit."""


@dataclass
class _Run:
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    stopped: bool = False


def _interrupt(thread: threading.Thread, wait: float = 1.0) -> bool:
    """Raise :class:`_StopStudentCode` inside ``thread``; True if it then ended."""
    if thread.ident is None:
        return not thread.is_alive()
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_StopStudentCode))
    thread.join(wait)
    return not thread.is_alive()


def _call(fn: Callable, args: tuple, timeout: float) -> _Run:
    run = _Run()

    def target():
        try:
            try:
                with np.errstate(all="ignore"):  # NaN and infinity are reported in the verdict instead
                    run.value = fn(*args)
            except BaseException as exc:
                run.error = exc
        except _StopStudentCode:  # arrived just after the function returned
            pass

    thread = threading.Thread(target=target, name="helpers-exercise-check", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        run.timed_out = True
        run.stopped = _interrupt(thread)
    return run


def _copy(value):
    """A deep enough copy of an input: arrays copied, containers rebuilt, Explanations cloned."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _copy(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if isinstance(getattr(value, f.name), np.ndarray)
        }
        return dataclasses.replace(value, **changes)
    return value


def _same_inputs(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_inputs(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same_inputs, a, b))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(_same_inputs(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return True


def _describe_exception(exc: BaseException, fn: Callable) -> str:
    """``TypeError: message (line 3 in my_fn)``, without a traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 200:
        text = text[:197] + "..."
    where = ""
    code = getattr(fn, "__code__", None)
    tb = exc.__traceback__
    found = None
    while tb is not None:
        if code is not None and tb.tb_frame.f_code.co_filename == code.co_filename:
            found = tb
        tb = tb.tb_next
    if found is not None:
        where = f" (line {found.tb_lineno} in {found.tb_frame.f_code.co_name})"
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"


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
# Real-model inputs (EfficientNet-Lite0, computed once)
# --------------------------------------------------------------------------

_real_cache: dict = {}


def _lite0(classifier=None):
    if classifier is not None:
        return classifier
    if "lite0" not in _real_cache:
        from .models import load_model

        _real_cache["lite0"] = load_model("efficientnet_lite0")
    return _real_cache["lite0"]


def _cached(key, make):
    # Keyed by the objects' ids; the objects are kept in the value so that an id is never reused.
    if key not in _real_cache:
        _real_cache[key] = make()
    return _real_cache[key][0]


def _chelsea_gradients(classifier=None):
    """``(A, dy/dA)`` for 'tiger cat' on the chelsea photo at the model's last conv layer."""
    classifier = _lite0(classifier)

    def make():
        from .data import load_sample
        from .explain import model_input
        from .explain.gradients import compute

        _, x = model_input(classifier, load_sample("chelsea"))
        index = classifier.class_index("tiger cat")
        raw = compute(classifier.model, x, classifier.last_conv_layer, class_indices=[index])
        return (np.array(raw.activations, np.float32), np.array(raw.activation_gradients[0], np.float32)), classifier

    return _cached(("chelsea_gradients", id(classifier)), make)


def _chelsea_relu_inputs(classifier=None):
    """``(x, upstream)`` of the model's last activation: its input, and the 'tiger cat' gradient at its output."""
    classifier = _lite0(classifier)

    def make():
        from .data import load_sample
        from .explain import model_input
        from .explain.gradients import compute
        from .explain.layers import find_layer, flat_layers

        _, x = model_input(classifier, load_sample("chelsea"))
        index = classifier.class_index("tiger cat")
        activation = find_layer(classifier.model, classifier.last_conv_layer)  # EfficientNet-Lite0: top_activation
        layers = flat_layers(classifier.model)
        before = layers[layers.index(activation) - 1]  # the layer that feeds it: top_bn
        inputs = compute(classifier.model, x, before.name, class_indices=[index]).activations
        upstream = compute(classifier.model, x, activation.name, class_indices=[index]).activation_gradients[0]
        return (np.array(inputs, np.float32), np.array(upstream, np.float32)), classifier

    return _cached(("chelsea_relu", id(classifier)), make)


def _chelsea_guided(classifier=None):
    """``(guided backprop map, Grad-CAM map, Guided Grad-CAM map)`` for 'tiger cat' on chelsea."""
    classifier = _lite0(classifier)

    def make():
        from .data import load_sample
        from .explain import explain_classes

        result = explain_classes(classifier, load_sample("chelsea"), ["tiger cat"])[0]
        return (result["guided_backprop"].map, result["gradcam"].map, result["guided_gradcam"].map), classifier

    return _cached(("chelsea_guided", id(classifier)), make)


def _cat_dog_top5(classifier=None, image=None):
    classifier = _lite0(classifier)

    def make():
        from .data import load_sample
        from .explain import explain_classes

        photo = load_sample("cat_dog") if image is None else image
        explanations = explain_classes(classifier, photo, top_k=5, guided=False)
        return (explanations, photo.shape[:2], classifier.input_size), (classifier, image)

    return _cached(("cat_dog_top5", id(classifier), id(image)), make)


def _real_case_or_note(make_case, what: str):
    """``(case, None)``, or ``(None, note)`` when the real inputs cannot be had here."""
    try:
        return make_case(), None
    except Exception as exc:
        return None, (
            f"Note: the real-model case ({what}) was skipped: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        )


# --------------------------------------------------------------------------
# 02: channel weights
# --------------------------------------------------------------------------


def _ints(shape, seed, low=-3, high=4):
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(np.float32)


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
        from .explain.maps import channel_weights

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


# --------------------------------------------------------------------------
# 02: the Grad-CAM map
# --------------------------------------------------------------------------


def _weighted(activations, weights):
    return np.tensordot(activations.astype(np.float64), np.asarray(weights, np.float64), axes=([2], [0]))


def _scale_to_max(raw):
    peak = float(np.max(raw))
    return raw / peak if peak > 0 else np.zeros_like(raw)


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
        from .explain.maps import grad_cam_map

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


# --------------------------------------------------------------------------
# 03: the guided ReLU rule
# --------------------------------------------------------------------------


def _reference_guided_relu_gradient(x: np.ndarray, upstream: np.ndarray) -> np.ndarray:
    """The gradient helpers' guided ReLU passes down, computed with TensorFlow."""
    import tensorflow as tf

    from .explain.activations import guided_relu, use_backward_rule

    x_tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_tensor)
        y = guided_relu(x_tensor)
    with use_backward_rule("guided"):
        gradient = tape.gradient(y, x_tensor, output_gradients=tf.constant(upstream))
    return gradient.numpy() + np.float32(0.0)  # + 0: no "-0." in the verdict


class _GuidedReluGradient(_ArrayExercise):
    name = "guided_relu_gradient"
    title = "the guided ReLU gradient rule"
    notebook = "03_guided_backprop.ipynb"
    arg_names = ("x", "upstream")
    what = "gradient"
    hint = (
        "A ReLU passes the gradient from above (upstream) down to its input only where two things hold: "
        "the unit was on in the forward pass (x > 0) and the gradient from above is positive. Everywhere "
        "else it passes 0."
    )
    mistakes = (
        Mistake(
            "plain",
            lambda c: c.args[1] * (c.args[0] > 0),
            "You kept only the forward mask [x > 0]: that is plain backpropagation through a ReLU. Guided "
            "backprop also needs the backward mask [upstream > 0], so negative gradients from above are "
            "blocked too.",
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
            "at_zero",
            lambda c: c.args[1] * (c.args[0] >= 0) * (c.args[1] > 0),
            "Almost: your result differs only where x == 0. A ReLU's output does not move when x is exactly "
            "0 moves a little to the left, and its gradient there is taken as 0: use x > 0, not x >= 0.",
        ),
        Mistake(
            "either",
            lambda c: c.args[1] * ((c.args[0] > 0) | (c.args[1] > 0)),
            "You let the gradient through where EITHER condition holds. Guided backprop needs BOTH: x > 0 "
            "and upstream > 0.",
        ),
        Mistake(
            "masked_x",
            lambda c: c.args[0] * ((c.args[0] > 0) & (c.args[1] > 0)),
            "You multiplied the forward input x by the masks. What flows down is the upstream gradient, "
            "masked: the masks decide where it passes, x only decides the forward mask.",
        ),
        Mistake(
            "mask_only",
            lambda c: ((c.args[0] > 0) & (c.args[1] > 0)).astype(np.float32),
            "You returned the mask itself (1 where the gradient passes, 0 elsewhere). Multiply the upstream "
            "gradient by it.",
        ),
        Mistake(
            "forward",
            lambda c: np.maximum(c.args[0], 0),
            "You returned ReLU(x), the forward output. The exercise asks for the gradient passed DOWN to x.",
        ),
        Mistake(
            "times_x",
            lambda c: c.args[1] * c.args[0] * ((c.args[0] > 0) & (c.args[1] > 0)),
            "You multiplied by x as well. The ReLU's slope is 1 where it is on, so the gradient passes "
            "unchanged (masked), not scaled by x.",
        ),
    )

    def cases(self, real_model=True, classifier=None, **_):
        def case(description, x, upstream, **kw):
            x, upstream = np.asarray(x, np.float32), np.asarray(upstream, np.float32)
            return Case(description, (x, upstream), _reference_guided_relu_gradient(x, upstream), **kw)

        rng = np.random.default_rng(21)
        big_x = rng.normal(size=(4, 5, 6)).astype(np.float32)
        big_up = rng.normal(size=(4, 5, 6)).astype(np.float32)
        found = [
            case("notebook 03's example: 5 units", [-2.0, -0.5, 0.5, 2.0, 3.0], [1.0, 1.0, 1.0, -1.0, 0.5]),
            case(
                "3 x 4 values with zeros in x and in the upstream gradient",
                [[0.0, 1.5, -1.0, 2.0], [0.0, -0.5, 0.0, 3.0], [1.0, 2.0, -2.0, 0.5]],
                [[2.0, 0.0, 1.0, -3.0], [-1.0, 4.0, 0.0, 2.0], [0.5, -0.5, 1.5, 1.0]],
            ),
            case(
                "every unit on (x > 0), the gradient from above of both signs",
                [[0.5, 1.0, 2.0], [3.0, 0.25, 4.0]],
                [[1.0, -2.0, 3.0], [-0.5, 2.5, -1.0]],
            ),
            case(
                "the gradient from above is negative everywhere: nothing passes",
                [[1.0, -1.0], [2.0, 0.5]],
                [[-1.0, -2.0], [-0.5, -3.0]],
            ),
            case("random 4 x 5 x 6 values", big_x, big_up, show_inputs=False),
        ]
        notes = []
        if real_model:
            real, note = _real_case_or_note(
                lambda: case(
                    "the real model: the input of EfficientNet-Lite0's last activation and the 'tiger cat' "
                    "gradient arriving at its output, 'chelsea' photo",
                    *_chelsea_relu_inputs(classifier),
                    show_inputs=False,
                ),
                "EfficientNet-Lite0",
            )
            found += [real] if real else []
            notes += [note] if note else []
        return found, notes


# --------------------------------------------------------------------------
# 04: Guided Grad-CAM
# --------------------------------------------------------------------------


def _reference_guided_grad_cam(guided: np.ndarray, cam: np.ndarray) -> np.ndarray:
    # As helpers.explain.explain builds Explanation("guided_gradcam").map.
    return guided * cam[..., None]


class _GuidedGradCam(_ArrayExercise):
    name = "guided_grad_cam"
    title = "Guided Grad-CAM"
    notebook = "04_guided_grad_cam.ipynb"
    arg_names = ("guided", "cam")
    what = "Guided Grad-CAM picture"
    hint = (
        "Guided Grad-CAM is the pixel-by-pixel product of the guided backprop picture and the upsampled "
        "Grad-CAM map; each of the three colour channels is multiplied by the same map value."
    )
    raise_hints = (
        (
            "broadcast",
            "The guided picture has shape (H, W, 3) and cam (H, W). NumPy lines shapes up from the "
            "right, so give cam a third axis of length 1: then it multiplies all three colour channels.",
        ),
    )
    mistakes = (
        Mistake(
            "no_channel_axis",
            lambda c: c.args[0] * c.args[1],
            "NumPy lined cam's axes up with the LAST two axes of the picture (width and colour), not with "
            "height and width: with a square 3 x 3 map this runs without complaint and gives a wrong "
            "product. Give cam a third axis of length 1.",
        ),
        Mistake(
            "sum",
            lambda c: c.args[0] + c.args[1][..., None],
            "You added the two. Guided Grad-CAM MULTIPLIES them: where Grad-CAM is 0 the detail must vanish.",
        ),
        Mistake(
            "abs",
            lambda c: np.abs(c.args[0]) * c.args[1][..., None],
            "You took the absolute value of the guided gradients. Keep their signs: the product is drawn "
            "like a gradient (grey = 0, lighter and darker = positive and negative).",
        ),
        Mistake(
            "relu",
            lambda c: np.maximum(c.args[0], 0) * c.args[1][..., None],
            "You dropped the negative guided gradients. Multiply the gradients as they are.",
        ),
        Mistake(
            "inverted",
            lambda c: c.args[0] * (1 - c.args[1])[..., None],
            "You multiplied by 1 - cam, which keeps the detail where Grad-CAM finds NO evidence. Multiply "
            "by the map itself.",
        ),
        Mistake(
            "negated",
            lambda c: -_reference_guided_grad_cam(*c.args),
            "Wrong sign: your picture is the right one times -1.",
        ),
        Mistake(
            "channel_mean",
            lambda c: (c.args[0] * c.args[1][..., None]).mean(axis=-1),
            "You averaged over the colour channels: the result should keep all three, shape (H, W, 3).",
        ),
        Mistake(
            "channel_sum",
            lambda c: (c.args[0] * c.args[1][..., None]).sum(axis=-1),
            "You summed over the colour channels: the result should keep all three, shape (H, W, 3).",
        ),
        Mistake(
            "first_channel",
            lambda c: c.args[0][..., 0] * c.args[1],
            "You used only the first colour channel: the result should keep all three, shape (H, W, 3).",
        ),
        Mistake(
            "cam_only",
            lambda c: np.repeat(c.args[1][..., None], 3, axis=-1),
            "You returned the Grad-CAM map (copied to three channels); multiply the guided gradients by it.",
        ),
    )

    def equivalent(self, value, case):
        expected = case.expected.astype(np.float64)
        energy = float((expected * expected).sum())
        if energy == 0.0:
            return None
        factor = float((value.astype(np.float64) * expected).sum()) / energy
        if factor > 0 and not np.isclose(factor, 1.0, rtol=1e-3) and _close(value, factor * expected):
            return (
                "Note: your picture is the product times a positive constant. It looks the same "
                "(viz.gradient_image rescales every picture), so it is accepted; the definition of Guided "
                "Grad-CAM is the plain product."
            )
        return None

    def cases(self, real_model=True, classifier=None, **_):
        def case(description, guided, cam, **kw):
            guided, cam = np.asarray(guided, np.float32), np.asarray(cam, np.float32)
            return Case(description, (guided, cam), _reference_guided_grad_cam(guided, cam), **kw)

        rng = np.random.default_rng(31)
        found = [
            case("2 x 3 pixels, the map from 0 to 1", _ints((2, 3, 3), seed=2), [[0.0, 0.5, 1.0], [1.0, 0.25, 0.0]]),
            case(
                "a square 3 x 3 picture", _ints((3, 3, 3), seed=4), [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.25, 0.5, 1.0]]
            ),
            case(
                "an empty Grad-CAM map (all zeros): nothing is left",
                _ints((2, 2, 3), seed=6),
                np.zeros((2, 2), np.float32),
            ),
            case("random 5 x 4 pixels", rng.normal(size=(5, 4, 3)), rng.uniform(size=(5, 4)), show_inputs=False),
        ]
        notes = []
        if real_model:

            def real():
                guided, cam, _ = _chelsea_guided(classifier)
                return case(
                    "the real model: EfficientNet-Lite0, 'tiger cat', 'chelsea' photo (224 x 224)",
                    guided,
                    cam,
                    show_inputs=False,
                )

            made, note = _real_case_or_note(real, "EfficientNet-Lite0")
            found += [made] if made else []
            notes += [note] if note else []
        return found, notes


# --------------------------------------------------------------------------
# 05: which class covers a region?
# --------------------------------------------------------------------------


def _share(heatmap, box) -> float:
    from .metrics import pointing_game_energy

    return pointing_game_energy(heatmap, box)


def _index_of(explanations, scores) -> int:
    return int(explanations[int(np.argmax(scores))]["gradcam"].class_index)


def _shares(explanations, box):
    return [_share(e["gradcam"].map, box) for e in explanations]


def _raw_mass(explanations, box):
    x0, y0, x1, y1 = box
    return [float(np.asarray(e["gradcam"].map)[y0:y1, x0:x1].sum()) for e in explanations]


def _swapped_shares(explanations, box):
    x0, y0, x1, y1 = box
    out = []
    for e in explanations:
        m = np.asarray(e["gradcam"].map, np.float64)
        total = m.sum()
        out.append(float(m[x0:x1, y0:y1].sum() / total) if total > 0 else 0.0)
    return out


def _nan_shares(explanations, box):
    x0, y0, x1, y1 = box
    with np.errstate(invalid="ignore", divide="ignore"):
        return [
            float(
                np.asarray(e["gradcam"].map, np.float64)[y0:y1, x0:x1].sum()
                / np.asarray(e["gradcam"].map, np.float64).sum()
            )
            for e in explanations
        ]


def _class_for_region_reference(explanations, box) -> int:
    return _index_of(explanations, _shares(explanations, box))


class _ClassForRegion(_Exercise):
    name = "class_for_region"
    title = "the class whose Grad-CAM covers a region"
    notebook = "05_class_discrimination.ipynb"
    arg_names = ("explanations", "box")
    hint = (
        "For each class, compute the share of its Grad-CAM map's total that lies inside the box "
        "(map[y0:y1, x0:x1], rows are y); return the class_index of the class with the largest share. "
        "An empty map (all zeros) has share 0."
    )
    mistakes = (
        Mistake(
            "position",
            lambda c: int(np.argmax(_shares(*c.args))),
            "You returned the POSITION of the best class in the list, not its ImageNet class index: read "
            "explanation['gradcam'].class_index.",
        ),
        Mistake(
            "most_probable",
            lambda c: int(max(c.args[0], key=lambda e: e["gradcam"].probability)["gradcam"].class_index),
            "You returned the most probable class, whatever the box. The question is which class's map "
            "covers the region.",
        ),
        Mistake(
            "raw_mass",
            lambda c: _index_of(c.args[0], _raw_mass(*c.args)),
            "You compared the total of each map inside the box. A map that is bright everywhere wins that "
            "way without pointing at the region. Compare the SHARE of each map's total that lies inside "
            "the box.",
        ),
        Mistake(
            "swapped",
            lambda c: _index_of(c.args[0], _swapped_shares(*c.args)),
            "x and y are swapped: a map is indexed [row, column] = [y, x], so the box is map[y0:y1, x0:x1].",
        ),
        Mistake(
            "argmin",
            lambda c: _index_of(c.args[0], -np.asarray(_shares(*c.args))),
            "You returned the class with the SMALLEST share in the box; the task asks for the largest.",
        ),
        Mistake(
            "nan",
            lambda c: _index_of(c.args[0], _nan_shares(*c.args)),
            "One of the maps is empty (all zeros): its share is 0/0 = NaN, and NaN wins np.argmax (and "
            "confuses max). Give an empty map the share 0.",
        ),
        Mistake(
            "whole_map",
            lambda c: _index_of(c.args[0], [float(np.sum(e["gradcam"].map)) for e in c.args[0]]),
            "You compared whole maps, ignoring the box. Only what lies inside the box counts.",
        ),
    )

    def matches(self, got, candidate) -> bool:
        return isinstance(got, int) and got == candidate

    def cases(self, real_model=True, classifier=None, image=None, **_):
        from .explain import Explanation
        from .imagenet import class_names

        names = class_names()

        def explanation(index, probability, heatmap):
            heatmap = np.asarray(heatmap, np.float32)
            from .imagenet import pretty

            return {
                "gradcam": Explanation(
                    method="gradcam",
                    class_index=index,
                    class_name=pretty(names[index]),
                    probability=probability,
                    logit=float(np.log(probability)),
                    map=heatmap,
                    empty=not heatmap.any(),
                )
            }

        def blob(y, x, h=6, w=8, size=1.5):
            ys, xs = np.mgrid[0:h, 0:w]
            return np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2 * size**2))

        def case(description, explanations, box, **kw):
            box = tuple(int(v) for v in box)
            return Case(description, (explanations, box), _class_for_region_reference(explanations, box), **kw)

        corners = [
            explanation(281, 0.5, _scale_to_max(blob(4.5, 1))),
            explanation(243, 0.3, _scale_to_max(blob(0.5, 6.5))),
            explanation(7, 0.2, _scale_to_max(blob(5, 7))),
        ]
        diffuse = [
            explanation(285, 0.6, np.full((6, 8), 1.0)),
            explanation(282, 0.4, _scale_to_max(blob(2, 2, size=0.8))),
        ]
        wide = [
            explanation(1, 0.45, _scale_to_max(blob(1, 6, size=1.0))),
            explanation(2, 0.35, _scale_to_max(blob(5, 1, size=1.0))),
            explanation(3, 0.2, _scale_to_max(blob(4, 3, size=1.0))),
        ]
        empty = [
            explanation(100, 0.7, np.zeros((6, 8))),
            explanation(200, 0.2, _scale_to_max(blob(3, 6))),
            explanation(300, 0.1, _scale_to_max(blob(3, 1))),
        ]
        found = [
            case(
                "three classes, each map bright in another corner; the box is the top-right corner",
                corners,
                (5, 0, 8, 2),
            ),
            case("a map bright everywhere against a map focused on the box", diffuse, (0, 0, 4, 4)),
            case("a wide, short box (x from 4 to 8, y from 0 to 2) on maps of 6 x 8 cells", wide, (4, 0, 8, 2)),
            case("one map is empty (all zeros)", empty, (4, 1, 8, 5)),
        ]
        notes = []
        if real_model:

            def real():
                explanations, (photo_h, photo_w), (map_h, map_w) = _cat_dog_top5(classifier, image)
                made = []
                for label, (x0, y0, x1, y1) in (("the dog", (215, 20, 475, 300)), ("the cat", (125, 300, 570, 480))):
                    box = (
                        round(x0 * map_w / photo_w),
                        round(y0 * map_h / photo_h),
                        round(x1 * map_w / photo_w),
                        round(y1 * map_h / photo_h),
                    )
                    kept = [{"gradcam": e["gradcam"]} for e in explanations]
                    made.append(
                        case(
                            f"the real model: EfficientNet-Lite0's top-5 classes on 'cat_dog', box around {label}",
                            kept,
                            box,
                            show_inputs=False,
                        )
                    )
                return made

            made, note = _real_case_or_note(real, "EfficientNet-Lite0 on 'cat_dog'")
            found += made or []
            notes += [note] if note else []
        return found, notes

    def judge(self, value, case: Case) -> CaseResult:
        explanations, _box = case.args
        expected = case.expected
        by_index = {int(e["gradcam"].class_index): e["gradcam"] for e in explanations}
        if value is None or value is Ellipsis:
            word = (
                "None. Is the `return` statement missing?"
                if value is None
                else "`...` (Ellipsis): the stub is not filled in yet."
            )
            return CaseResult(
                case, "type", None, "returned " + ("None" if value is None else "..."), "Your function returned " + word
            )
        if isinstance(value, str):
            if value.strip().lower().replace("_", " ") == by_index[expected].class_name.lower().replace("_", " "):
                return CaseResult(
                    case,
                    "ok",
                    expected,
                    "",
                    "",
                    [
                        "Note: your function returned the class NAME; it names the right class, so it is accepted. "
                        "The exercise asks for the class index (explanation['gradcam'].class_index)."
                    ],
                )
            return CaseResult(
                case,
                "type",
                None,
                "returned a str",
                f"Your function returned the string {value!r}; return the class index, an int.",
            )
        if isinstance(value, dict) or dataclasses.is_dataclass(value):
            return CaseResult(
                case,
                "type",
                None,
                f"returned a {type(value).__name__}",
                f"Your function returned a {type(value).__name__}; return just the class index "
                "(an int): explanation['gradcam'].class_index.",
            )
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iu":
                value = int(value.reshape(()))
            else:
                return CaseResult(
                    case,
                    "type",
                    None,
                    f"returned a {type(value).__name__}",
                    f"Your function returned {value!r} ({type(value).__name__}); return the class index, an int.",
                )
        value = int(value)
        if value == expected:
            return CaseResult(case, "ok", value)
        return CaseResult(
            case,
            "values",
            value,
            "wrong class",
            f"Expected class {expected} ('{by_index[expected].class_name}'); you returned {value}"
            + (
                f" ('{by_index[value].class_name}')."
                if value in by_index
                else ", which is not the class_index of any of the explanations given."
            ),
        )

    def explain_case(self, case):
        explanations, box = case.args
        lines = ["share of each map's total inside the box:"]
        for e in explanations:
            g = e["gradcam"]
            lines.append(
                f"  class {g.class_index:>3} ('{g.class_name}', p={g.probability:.3f}): {_share(g.map, box):.3f}"
            )
        return "\n  ".join(lines)

    def show_expected(self, case):
        return repr(case.expected)

    def show_inputs(self, case):
        explanations, box = case.args
        shape = explanations[0]["gradcam"].map.shape
        return f"box (x0, y0, x1, y1) = {box}; {len(explanations)} explanations, maps of {shape[0]} x {shape[1]} cells"


# --------------------------------------------------------------------------
# 09: how much of the evidence sits on the shortcut marker?
# --------------------------------------------------------------------------


def _marker_share_reference(maps, box) -> float:
    # helpers.shortcut.marker_shares, averaged: each map's share first, then the mean over maps.
    return float(np.mean([_share(m, box) for m in maps])) if len(maps) else 0.0


def _pooled_share(maps, box) -> float:
    x0, y0, x1, y1 = box
    maps = np.asarray(maps, np.float64)
    total = maps.sum()
    return float(maps[:, y0:y1, x0:x1].sum() / total) if total > 0 else 0.0


def _per_map_shares_xy_swapped(maps, box) -> float:
    x0, y0, x1, y1 = box
    out = []
    for m in np.asarray(maps, np.float64):
        out.append(m[x0:x1, y0:y1].sum() / m.sum() if m.sum() > 0 else 0.0)
    return float(np.mean(out))


def _nan_marker_share(maps, box) -> float:
    x0, y0, x1, y1 = box
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(
            np.mean([np.asarray(m, np.float64)[y0:y1, x0:x1].sum() / np.asarray(m, np.float64).sum() for m in maps])
        )


class _MarkerShare(_ArrayExercise):
    name = "marker_share"
    title = "the mean share of Grad-CAM mass on the shortcut marker"
    notebook = "09_your_own_model.ipynb"
    arg_names = ("maps", "box")
    what = "mean share (one number)"
    hint = (
        "For each map: the sum of the map inside the box (map[y0:y1, x0:x1], rows are y) divided by the "
        "map's total; an all-zero map has share 0. Return the mean of these shares over the maps: one float."
    )
    mistakes = (
        Mistake(
            "per_map",
            lambda c: np.asarray([_share(m, c.args[1]) for m in c.args[0]]),
            "You returned one share per map. The exercise asks for their mean: one number.",
        ),
        Mistake(
            "pooled",
            lambda c: _pooled_share(*c.args),
            "You divided the mass inside the boxes of ALL maps by the mass of all maps together. Then a map "
            "with much total mass outweighs a faint one; take each map's share first, then the mean.",
        ),
        Mistake(
            "raw_mass",
            lambda c: float(
                np.mean(
                    [np.asarray(m)[c.args[1][1] : c.args[1][3], c.args[1][0] : c.args[1][2]].sum() for m in c.args[0]]
                )
            ),
            "You averaged the map's sum inside the box, not its SHARE: divide by each map's total.",
        ),
        Mistake(
            "swapped",
            lambda c: _per_map_shares_xy_swapped(*c.args),
            "x and y are swapped: a map is indexed [row, column] = [y, x], so the box is map[y0:y1, x0:x1].",
        ),
        Mistake(
            "nan",
            lambda c: _nan_marker_share(*c.args),
            "One map is empty (all zeros): its share is 0/0 = NaN, and the mean becomes NaN. Give an empty "
            "map the share 0.",
        ),
        Mistake(
            "inclusive",
            lambda c: _marker_share_reference(
                c.args[0], (c.args[1][0], c.args[1][1], c.args[1][2] + 1, c.args[1][3] + 1)
            ),
            "Your box is one pixel too large: x1 and y1 are excluded, as in Python slices (map[y0:y1, x0:x1]).",
        ),
        Mistake(
            "area",
            lambda c: float(
                np.mean(
                    [
                        (c.args[1][2] - c.args[1][0]) * (c.args[1][3] - c.args[1][1]) / np.asarray(m).size
                        for m in c.args[0]
                    ]
                )
            ),
            "You returned the box's share of the AREA: that is what a uniform map scores, whatever the maps.",
        ),
    )

    def cases(self, real_model=True, classifier=None, image=None, maps=None, box=None, **_):
        def case(description, maps_, box_, **kw):
            maps_ = np.asarray(maps_, np.float32)
            box_ = tuple(int(v) for v in box_)
            return Case(description, (maps_, box_), np.asarray(_marker_share_reference(maps_, box_)), **kw)

        corner = np.zeros((4, 6), np.float32)
        corner[0, 0], corner[3, 5] = 3.0, 1.0  # 3/4 of the mass in the top-left cell
        rng = np.random.default_rng(9)
        found = [
            case("one 4 x 6 map, 3/4 of its mass in the top-left cell; box = that cell", [corner], (0, 0, 1, 1)),
            case(
                "two maps, one faint and one bright: the mean of their shares",
                [corner, 10 * corner[::-1, ::-1]],
                (0, 0, 2, 2),
            ),
            case(
                "a wide, short box (x from 1 to 5, y from 0 to 2)",
                [_ints((4, 6), seed=5, low=0, high=5), _ints((4, 6), seed=6, low=0, high=5)],
                (1, 0, 5, 2),
            ),
            case(
                "one of three maps is empty (all zeros)",
                [corner, np.zeros((4, 6)), _ints((4, 6), seed=8, low=0, high=4)],
                (0, 0, 3, 2),
            ),
            case(
                "20 random 16 x 16 maps, an 8 x 8 box in the corner",
                rng.uniform(size=(20, 16, 16)) ** 3,
                (2, 2, 10, 10),
                show_inputs=False,
            ),
        ]
        notes = []
        if real_model:

            def real():
                # EfficientNet-Lite0's top-5 Grad-CAM maps on 'cat_dog' and the box around the dog (as in 05)
                explanations, (photo_h, photo_w), (map_h, map_w) = _cat_dog_top5(classifier, image)
                x0, y0, x1, y1 = (215, 20, 475, 300)
                dog = (
                    round(x0 * map_w / photo_w),
                    round(y0 * map_h / photo_h),
                    round(x1 * map_w / photo_w),
                    round(y1 * map_h / photo_h),
                )
                return case(
                    "the real model: EfficientNet-Lite0's top-5 Grad-CAM maps on 'cat_dog', box around the dog",
                    [e["gradcam"].map for e in explanations],
                    dog,
                    show_inputs=False,
                )

            made, note = _real_case_or_note(real, "EfficientNet-Lite0 on 'cat_dog'")
            found += [made] if made else []
            notes += [note] if note else []
        if maps is not None and box is not None:
            found.append(
                case(
                    f"the real model of notebook 09: {len(maps)} Grad-CAM maps of the small CNN, box {tuple(box)}",
                    maps,
                    box,
                    show_inputs=False,
                )
            )
        return found, notes

    def equivalent(self, value, case):
        if _close(value, 100.0 * case.expected) and float(case.expected) != 0.0:
            return (
                "Note: your share is in percent (100 times the fraction). It says the same, so it is "
                "accepted; the table of notebook 09 gives fractions between 0 and 1."
            )
        return None

    def show_inputs(self, case):
        maps, box = case.args
        head = f"box (x0, y0, x1, y1) = {box}; {len(maps)} maps of shape {maps.shape[1:]}"
        if maps[0].size > 40:
            return head
        return head + ":\n" + "\n".join(f"  map {i}: " + _show(m, "      ") for i, m in enumerate(maps))


# --------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------

EXERCISES: dict = {
    e.name: e
    for e in (
        _ChannelWeights(),
        _GradCamMap(),
        _GuidedReluGradient(),
        _GuidedGradCam(),
        _ClassForRegion(),
        _MarkerShare(),
    )
}


def _inputs_text(exercise, case: Case) -> str:
    if hasattr(exercise, "show_inputs"):
        return "  " + exercise.show_inputs(case)
    return "\n".join(f"  {name}: {_show(arg)}" for name, arg in zip(exercise.arg_names, case.args))


def _fill(text: str) -> str:
    return textwrap.fill(text, 100, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)


def _verdict(exercise, results: list, notes: list, fn: Callable, timeout: float) -> tuple[bool, str, list]:
    right = sum(r.ok for r in results)
    passed = right == len(results) and all(r.status != "not run" for r in results)
    notes = list(notes)
    for r in results:
        for note in r.notes:
            if note not in notes:
                notes.append(note)
    lines = []
    checked = f"{exercise.name}, checking {getattr(fn, '__name__', 'your function')}"
    if passed:
        lines.append(f"{checked}: passed, all {len(results)} cases right. Well done!")
    else:
        lines.append(f"{checked}: not yet. {right} of {len(results)} cases right.")
    for r in results:
        mark = OK if r.ok else ("-" if r.status == "not run" else FAIL)
        lines.append(f"  {mark} {r.case.description}" + ("" if r.ok else f": {r.summary}"))
    if not passed:
        first = next(r for r in results if not r.ok and r.status != "not run")
        lines.append("")
        lines.append(f"First problem, in the case '{first.case.description}':")
        if first.status == "timeout":
            lines.append(
                _fill(
                    f"Your function did not return within {timeout:g} s. Is there a loop that never "
                    f"ends? {first.detail}"
                )
            )
        elif first.status == "raised":
            lines.append(_fill(f"Your function raised {first.detail}."))
            text = f"{type(first.error).__name__}: {first.error}".lower()
            hint = next((h for needle, h in exercise.raise_hints if needle in text), exercise.hint)
            lines.append(_fill("Hint: " + hint))
            diagnosis = exercise.diagnose(results)
            if diagnosis:
                lines.append(_fill("Also: " + diagnosis))
        else:
            if first.case.show_inputs:
                lines.append("  inputs:")
                lines.append(textwrap.indent(_inputs_text(exercise, first.case), "  "))
            lines.append("  expected: " + exercise.show_expected(first.case))
            if first.value is not None and first.status in ("values", "shape", "dtype", "nonfinite"):
                lines.append("  you returned: " + exercise.show_value(first.value, first.case))
            lines.append(_fill(first.detail))
            extra = exercise.explain_case(first.case)
            if extra:
                lines.append("  " + extra)
            diagnosis = exercise.diagnose(results)
            if diagnosis:
                lines.append(_fill("Diagnosis: " + diagnosis))
            else:
                lines.append(_fill("Hint: " + exercise.hint))
    for note in notes:
        lines.append(textwrap.fill(note, 100))
    return passed, "\n".join(lines), notes


def check(
    name: str,
    fn: Callable,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    real_model: bool = True,
    quiet: bool = False,
    **context,
) -> CheckResult:
    """Check a student's function for exercise ``name`` (see ``EXERCISES``); print and return the verdict.

    Args:
        name: the exercise, e.g. ``"channel_weights"``.
        fn: the student's function.
        timeout: seconds per case before the function is interrupted.
        real_model: also run the cases with EfficientNet-Lite0 (loaded once, then cached).
        quiet: do not print; only return the :class:`CheckResult`.
        **context: ``classifier=`` (a loaded EfficientNet-Lite0 to reuse), ``image=`` (the
            cat_dog photo, for ``class_for_region``).
    """
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}: choose one of {', '.join(map(repr, EXERCISES))}")
    exercise = EXERCISES[name]
    if not callable(fn):
        message = (
            f"{name}: not yet. check_{name} needs your function itself, e.g. check_{name}(my_{name}); "
            f"it got a {type(fn).__name__}."
        )
        result = CheckResult(name, False, message, (), ())
    else:
        cases, notes = exercise.cases(real_model=real_model, **context)
        results = []
        stopped_early = False
        for case in cases:
            if stopped_early:
                results.append(CaseResult(case, "not run", summary="not run"))
                continue
            args = tuple(_copy(a) for a in case.args)
            run = _call(fn, args, timeout)
            if run.timed_out:
                detail = (
                    "The check interrupted it."
                    if run.stopped
                    else "It could not be interrupted and may keep running in the background; if the notebook "
                    "becomes slow, restart the kernel (Kernel > Restart Kernel)."
                )
                results.append(CaseResult(case, "timeout", summary=f"no answer within {timeout:g} s", detail=detail))
                stopped_early = True
                continue
            if run.error is not None:
                results.append(
                    CaseResult(
                        case,
                        "raised",
                        summary=f"raised {type(run.error).__name__}",
                        detail=_describe_exception(run.error, fn),
                        error=run.error,
                    )
                )
                continue
            judged = exercise.judge(run.value, case)
            judged.case = case
            if not all(_same_inputs(a, b) for a, b in zip(args, case.args)):
                judged.notes.append(
                    "Note: your function changed its input arrays in place. The check gave it "
                    "copies, but in a notebook this would change your variables too; compute "
                    "into new arrays instead."
                )
            results.append(judged)
        passed, message, all_notes = _verdict(exercise, results, notes, fn, timeout)
        result = CheckResult(
            name, passed, message, tuple(all_notes), tuple((r.case.description, r.status) for r in results)
        )
    if not quiet:
        print(result.message)
        result._printed = True
    return result


def check_channel_weights(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 02. ``fn(gradients)``: gradients ``(h, w, K)`` -> ``alpha`` ``(K,)``, the mean gradient per channel."""
    return check("channel_weights", fn, **kwargs)


def check_grad_cam_map(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 02. ``fn(activations, gradients)`` (both ``(h, w, K)``) -> ``(alpha (K,), L (h, w))``.

    ``L = ReLU(sum_k alpha_k A^k)`` divided by its maximum (all zeros when nothing is positive).
    A sum instead of the mean for alpha gives the same map and is accepted with a note.
    """
    return check("grad_cam_map", fn, **kwargs)


def check_guided_relu_gradient(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 03. ``fn(x, upstream)`` -> the gradient a guided ReLU passes down to ``x`` (same shape)."""
    return check("guided_relu_gradient", fn, **kwargs)


def check_guided_grad_cam(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 04. ``fn(guided (H, W, 3), cam (H, W))`` -> Guided Grad-CAM ``(H, W, 3)``."""
    return check("guided_grad_cam", fn, **kwargs)


def check_class_for_region(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 05. ``fn(explanations, box)`` -> the class index whose Grad-CAM map has the largest share in ``box``.

    ``explanations``: a list like ``explain_classes(classifier, photo, top_k=5)``, one dict per class with
    at least ``"gradcam"``; ``box``: ``(x0, y0, x1, y1)`` in map cells, ``map[y0:y1, x0:x1]``.
    """
    return check("class_for_region", fn, **kwargs)


def check_marker_share(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 09. ``fn(maps (m, H, W), box)`` -> the mean over the maps of each map's share inside ``box``.

    ``box``: ``(x0, y0, x1, y1)`` in map pixels, ``map[y0:y1, x0:x1]``; an all-zero map has share 0.
    Pass ``maps=`` and ``box=`` to add a case with your own maps (the notebook passes the small CNN's).
    """
    return check("marker_share", fn, **kwargs)

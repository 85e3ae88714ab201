"""helpers.exercises: the checkers accept the reference solutions, reject known mistakes with a
specific message, accept equivalent answers with a note, and survive student code that raises,
hangs, returns NaN or the wrong shape. The exercise cells of notebooks 02-05 are run too; the
exercises of 07 and 08 (their cells are not in the notebooks yet) are checked on hand-worked values."""

from __future__ import annotations

import inspect
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import exercises
from helpers.exercises import EXERCISES, check, real_inputs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


# --------------------------------------------------------------------------
# Reference solutions (as in the hidden solution cells)
# --------------------------------------------------------------------------


def solution_channel_weights(gradients):
    return gradients.mean(axis=(0, 1))


def solution_grad_cam_map(activations, gradients):
    alpha = gradients.mean(axis=(0, 1))
    weighted = np.tensordot(activations, alpha, axes=([2], [0]))
    positive = np.maximum(weighted, 0)
    peak = positive.max()
    heatmap = positive / peak if peak > 0 else np.zeros_like(positive)
    return alpha, heatmap


def solution_guided_relu_gradient(x, upstream, max_value=None):
    on = (x > 0) if max_value is None else (x > 0) & (x < max_value)
    return upstream * (on & (upstream > 0))


def solution_guided_grad_cam(guided, cam):
    return guided * cam[..., None]


def solution_class_for_region(explanations, box):
    x0, y0, x1, y1 = box

    def share(explanation):
        heatmap = explanation["gradcam"].map
        total = heatmap.sum()
        return heatmap[y0:y1, x0:x1].sum() / total if total > 0 else 0.0

    return max(explanations, key=share)["gradcam"].class_index


def solution_deletion_auc(fractions, scores):
    widths = np.diff(fractions)
    heights = (scores[:-1] + scores[1:]) / 2
    return float(np.sum(heights * widths))


def solution_grad_cam_plus_plus_weights(activations, gradients):
    g2 = gradients**2
    denominator = 2 * g2 + activations.sum(axis=(0, 1)) * gradients**3
    alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
    return (alpha * np.maximum(gradients, 0)).sum(axis=(0, 1))


SOLUTIONS = {
    "channel_weights": solution_channel_weights,
    "grad_cam_map": solution_grad_cam_map,
    "guided_relu_gradient": solution_guided_relu_gradient,
    "guided_grad_cam": solution_guided_grad_cam,
    "class_for_region": solution_class_for_region,
    "deletion_auc": solution_deletion_auc,
    "grad_cam_plus_plus_weights": solution_grad_cam_plus_plus_weights,
}


# --------------------------------------------------------------------------
# Plausible wrong answers, and what the verdict must say about them
# --------------------------------------------------------------------------


def _cam(activations, gradients, *, relu=True, sign=1.0, normalise=True):
    alpha = sign * gradients.mean(axis=(0, 1))
    weighted = np.tensordot(activations, alpha, axes=([2], [0]))
    if relu:
        weighted = np.maximum(weighted, 0)
    if normalise:
        peak = weighted.max()
        weighted = weighted / peak if peak > 0 else np.zeros_like(weighted)
    return alpha, weighted


def _shares(explanations, box, swap=False, raw=False):
    x0, y0, x1, y1 = box
    out = []
    for e in explanations:
        m = e["gradcam"].map
        inside = m[x0:x1, y0:y1].sum() if swap else m[y0:y1, x0:x1].sum()
        out.append(inside if raw else (inside / m.sum() if m.sum() > 0 else 0.0))
    return out


WRONG = {
    "channel_weights": [
        ("sum", lambda g: g.sum(axis=(0, 1)), "SUM over the h x w positions"),
        ("max", lambda g: g.max(axis=(0, 1)), "global max pooling"),
        ("channel axis", lambda g: g.mean(axis=2), "averaged over the channel axis"),
        ("abs", lambda g: np.abs(g).mean(axis=(0, 1)), "The sign matters"),
        ("sign", lambda g: -g.mean(axis=(0, 1)), "Wrong sign"),
        ("keepdims", lambda g: g.mean(axis=(0, 1), keepdims=True), "the shape is (1, 1, K)"),
    ],
    "grad_cam_map": [
        ("no ReLU", lambda a, g: _cam(a, g, relu=False), "Missing ReLU"),
        ("gradient sign", lambda a, g: _cam(a, g, sign=-1.0), "Wrong gradient sign"),
        ("not normalised", lambda a, g: _cam(a, g, normalise=False), "not scaled to [0, 1]"),
        ("map only", lambda a, g: _cam(a, g)[1], "Return two things"),
        ("relu on gradients", lambda a, g: _cam(a, np.maximum(g, 0)), "ReLU to the gradients"),
    ],
    "guided_relu_gradient": [
        ("forward mask only", lambda x, up, m=None: up * _on(x, m), "only the forward mask [x > 0]"),
        ("backward mask only", lambda x, up, m=None: up * (up > 0), "only the backward mask [upstream > 0]"),
        ("sign", lambda x, up, m=None: -(up * (_on(x, m) & (up > 0))), "Wrong gradient sign"),
        ("x >= 0", lambda x, up, m=None: up * ((x >= 0) & (x < (m or np.inf)) & (up > 0)), "not x >= 0"),
        ("or", lambda x, up, m=None: up * (_on(x, m) | (up > 0)), "EITHER condition"),
        ("bool mask", lambda x, up, m=None: _on(x, m) & (up > 0), "the mask itself"),
        ("ReLU6 as ReLU", lambda x, up, m=None: up * ((x > 0) & (up > 0)), "the plain ReLU's forward mask x > 0"),
        ("always ReLU6", lambda x, up, m=None: up * ((x > 0) & (x < 6) & (up > 0)), "has no upper limit"),
        ("x <= 6", lambda x, up, m=None: up * ((x > 0) & (x <= (m or np.inf)) & (up > 0)), "not x <= max_value"),
    ],
    "guided_grad_cam": [
        ("sum", lambda g, c: g + c[..., None], "You added the two"),
        ("abs", lambda g, c: np.abs(g) * c[..., None], "absolute value"),
        ("one minus", lambda g, c: g * (1 - c)[..., None], "1 - cam"),
        ("channel mean", lambda g, c: (g * c[..., None]).mean(axis=-1), "averaged over the colour channels"),
        ("no channel axis", lambda g, c: g * c, "third axis of length 1"),
    ],
    "class_for_region": [
        ("position", lambda e, b: int(np.argmax(_shares(e, b))), "POSITION of the best class"),
        (
            "most probable",
            lambda e, b: max(e, key=lambda x: x["gradcam"].probability)["gradcam"].class_index,
            "most probable class",
        ),
        (
            "raw mass",
            lambda e, b: e[int(np.argmax(_shares(e, b, raw=True)))]["gradcam"].class_index,
            "Compare the SHARE",
        ),
        (
            "x and y swapped",
            lambda e, b: e[int(np.argmax(_shares(e, b, swap=True)))]["gradcam"].class_index,
            "x and y are swapped",
        ),
        ("smallest", lambda e, b: e[int(np.argmin(_shares(e, b)))]["gradcam"].class_index, "SMALLEST share"),
    ],
}


def _on(x, max_value=None):
    return (x > 0) if max_value is None else (x > 0) & (x < max_value)


def _guided_relu_tf(x, upstream, max_value=None):
    import tensorflow as tf

    return tf.where(_on(x, max_value) & (upstream > 0), upstream, tf.zeros_like(upstream))


def _class_name_answer(explanations, box):
    index = solution_class_for_region(explanations, box)
    return next(e["gradcam"].class_name for e in explanations if e["gradcam"].class_index == index)


EQUIVALENT = {
    "channel_weights": (lambda g: list(g.mean(axis=(0, 1))), "converted it with np.asarray"),
    "grad_cam_map": (lambda a, g: (g.sum(axis=(0, 1)), _cam(a, g)[1]), "SUM of the gradients"),
    "guided_relu_gradient": (_guided_relu_tf, "converted it with np.asarray"),
    "guided_grad_cam": (lambda g, c: g * c[..., None] / 10.0, "times a positive constant"),
    "class_for_region": (_class_name_answer, "class NAME"),
}


def solution_marker_share(maps, box):
    x0, y0, x1, y1 = box
    shares = [m[y0:y1, x0:x1].sum() / m.sum() if m.sum() > 0 else 0.0 for m in maps]
    return float(np.mean(shares))


SOLUTIONS["marker_share"] = solution_marker_share
WRONG["marker_share"] = [
    (
        "per map",
        lambda m, b: [float(x[b[1] : b[3], b[0] : b[2]].sum() / max(x.sum(), 1e-12)) for x in m],
        "one share per map",
    ),
    ("pooled", lambda m, b: float(m[:, b[1] : b[3], b[0] : b[2]].sum() / m.sum()), "boxes of ALL maps"),
    ("raw mass", lambda m, b: float(np.mean([x[b[1] : b[3], b[0] : b[2]].sum() for x in m])), "not its SHARE"),
]
EQUIVALENT["marker_share"] = (lambda m, b: 100 * solution_marker_share(m, b), "in percent")


def _gpp(a, g, *, relu=True, local=False, two=2.0, reduce=np.sum, normalise=False):
    """Grad-CAM++'s weights with one step changed, as a student might write them."""
    total = a if local else a.sum(axis=(0, 1))
    denominator = two * g**2 + total * g**3
    alpha = np.divide(g**2, denominator, out=np.zeros_like(g), where=denominator != 0)
    if normalise:
        sums = alpha.sum(axis=(0, 1))
        alpha = np.divide(alpha, sums, out=np.zeros_like(alpha), where=sums != 0)
    return reduce(alpha * (np.maximum(g, 0) if relu else g), axis=(0, 1))


WRONG["deletion_auc"] = [
    ("mean", lambda f, p: float(np.mean(p)), "averaged the scores"),
    ("swapped", lambda f, p: float(np.trapezoid(f, p)), "np.trapezoid(y, x) takes the values first"),
    ("no width", lambda f, p: float(np.sum((p[:-1] + p[1:]) / 2)), "did not multiply each by its width"),
    ("equal steps", lambda f, p: float(np.mean((p[:-1] + p[1:]) / 2)), "all steps are equally wide"),
    ("left", lambda f, p: float(np.sum(p[:-1] * np.diff(f))), "LEFT end of each step"),
    ("one minus", lambda f, p: 1 - float(np.trapezoid(p, f)), "You returned 1 - AUC"),
    ("per step", lambda f, p: (p[:-1] + p[1:]) / 2 * np.diff(f), "the area of each step"),
]
WRONG["grad_cam_plus_plus_weights"] = [
    ("Grad-CAM", lambda a, g: g.mean(axis=(0, 1)), "Grad-CAM's weights"),
    ("no ReLU", lambda a, g: _gpp(a, g, relu=False), "multiply by ReLU(g)"),
    ("local sum", lambda a, g: _gpp(a, g, local=True), "over ALL positions"),
    ("no 2", lambda a, g: _gpp(a, g, two=1.0), "you left out the factor 2"),
    ("mean", lambda a, g: _gpp(a, g, reduce=np.mean), "You averaged over the positions"),
    ("normalised alpha", lambda a, g: _gpp(a, g, normalise=True), "as the authors' code does"),
]
EQUIVALENT["deletion_auc"] = (lambda f, p: [solution_deletion_auc(f, p)], "holding one number")
EQUIVALENT["grad_cam_plus_plus_weights"] = (
    lambda a, g: list(solution_grad_cam_plus_plus_weights(a, g)),
    "converted it with np.asarray",
)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def context(lite0, cat_dog):
    """Reuse the session's EfficientNet-Lite0 and the cat_dog photo for the real-model cases."""
    return {"classifier": lite0, "image": cat_dog}


def run(name, fn, context, **kwargs):
    return check(name, fn, quiet=True, **context, **kwargs)


# --------------------------------------------------------------------------
# The reference solutions pass
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXERCISES))
def test_reference_solution_passes_with_the_real_model(name, context, capsys):
    result = check(name, SOLUTIONS[name], **context)
    printed = capsys.readouterr().out
    assert result.passed, result.message
    assert result.notes == ()
    assert printed.strip() == result.message.strip()
    assert all(status == "ok" for _, status in result.cases)
    assert any("real model" in description for description, _ in result.cases), "a real-model case ran"
    assert len(result.cases) >= 4
    # The verdict goes into stored notebook outputs: tests/test_notebooks_static.py forbids these words.
    assert "Error" not in printed and "Traceback" not in printed and "warning" not in printed.lower()


def test_every_exercise_has_a_checker_function():
    for name in EXERCISES:
        assert callable(getattr(exercises, f"check_{name}"))
    assert len(EXERCISES) >= 4


# --------------------------------------------------------------------------
# Known mistakes are rejected with a specific message
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label", "fn", "expected"),
    [(name, label, fn, expected) for name, items in WRONG.items() for label, fn, expected in items],
    ids=[f"{name}-{label}" for name, items in WRONG.items() for label, *_ in items],
)
def test_wrong_answer_is_rejected_with_a_diagnosis(name, label, fn, expected, context):
    result = run(name, fn, context)
    assert not result.passed
    text = flat(result.message)
    assert expected in text, result.message
    assert "not yet" in text and "First problem" in text
    assert "Traceback" not in text


def test_at_least_three_wrong_answers_per_exercise():
    assert all(len(WRONG[name]) >= 3 for name in EXERCISES)


def test_first_mismatch_shows_inputs_expected_and_given_values(context):
    result = run("guided_relu_gradient", WRONG["guided_relu_gradient"][0][1], context)
    text = result.message
    assert "notebook 03's example" in text
    assert "[-2.  -0.5  0.5  2.   3. ]" in text  # the input x
    assert "expected: shape (5,), float32\n    [0.  0.  1.  0.  0.5]" in text
    assert "you returned: shape (5,), float32\n    [ 0.   0.   1.  -1.   0.5]" in text
    assert "index (3,): expected 0, you returned -1" in text


def test_what_is_right_is_listed(context):
    result = run("channel_weights", lambda g: g.sum(axis=(0, 1)), context)
    assert "✓ a single position (1 x 1 x 3)" in result.message  # sum == mean with one position
    assert "Right: the shape (4,) and a float dtype." in result.message


def test_verdicts_never_show_solution_code(context):
    lines = set()
    for fn in SOLUTIONS.values():
        for line in inspect.getsource(fn).splitlines()[1:]:
            if len(line.strip()) > 12:
                lines.add(line.strip())
    for name, items in WRONG.items():
        for _, fn, _ in items:
            message = run(name, fn, context).message
            for line in lines:
                assert line not in message


# --------------------------------------------------------------------------
# Equivalent answers pass, with a note
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXERCISES))
def test_equivalent_answer_is_accepted_with_a_note(name, context):
    fn, note = EQUIVALENT[name]
    result = run(name, fn, context)
    assert result.passed, result.message
    assert any(note in flat(n) for n in result.notes), result.notes
    assert note in flat(result.message)


def test_sum_instead_of_mean_is_not_accepted_for_the_weights_themselves(context):
    # In grad_cam_map the constant cancels; alpha on its own must be the mean.
    assert run("grad_cam_map", EQUIVALENT["grad_cam_map"][0], context).passed
    assert not run("channel_weights", lambda g: g.sum(axis=(0, 1)), context).passed


def test_negative_multiple_is_not_an_equivalent(context):
    result = run("guided_grad_cam", lambda g, c: -0.5 * g * c[..., None], context)
    assert not result.passed


# --------------------------------------------------------------------------
# Student code that raises, hangs, returns NaN or the wrong type
# --------------------------------------------------------------------------


def test_a_function_that_raises_is_reported_without_a_traceback():
    def my_channel_weights(gradients):
        total = gradients.sum(axis=(0, 1))
        return total / 0 if False else gradients[10, 10]

    result = check("channel_weights", my_channel_weights, quiet=True, real_model=False)
    assert not result.passed
    text = flat(result.message)
    assert "raised IndexError: index 10 is out of bounds" in text
    assert "in my_channel_weights" in text and "line " in text
    assert "Traceback" not in text and 'File "' not in text


def test_broadcast_mistake_gets_a_specific_hint():
    result = check("guided_grad_cam", lambda g, c: g * c, quiet=True, real_model=False)
    text = flat(result.message)
    assert "raised ValueError" in text and "third axis of length 1" in text
    assert "✗ a square 3 x 3 picture: wrong values" in result.message


def test_a_busy_loop_is_interrupted_after_the_time_limit():
    def my_channel_weights(gradients):
        while True:
            pass

    start = time.perf_counter()
    result = check("channel_weights", my_channel_weights, quiet=True, real_model=False, timeout=0.5)
    elapsed = time.perf_counter() - start
    assert not result.passed
    assert elapsed < 4.0
    text = flat(result.message)
    assert "did not return within 0.5 s" in text and "The check interrupted it." in text
    assert [status for _, status in result.cases][1:] == ["not run"] * (len(result.cases) - 1)
    time.sleep(0.2)
    assert not any(t.name == "helpers-exercise-check" and t.is_alive() for t in threading.enumerate())


def test_a_function_blocked_in_c_code_is_reported_as_still_running():
    release = threading.Event()

    def my_channel_weights(gradients):
        release.wait(30)  # a blocking call: the interruption waits until it returns
        return gradients.mean(axis=(0, 1))

    try:
        result = check("channel_weights", my_channel_weights, quiet=True, real_model=False, timeout=0.3)
        assert not result.passed
        assert "may keep running in the background" in flat(result.message)
        assert "restart the kernel" in flat(result.message)
    finally:
        release.set()


def test_nan_is_reported():
    result = check(
        "grad_cam_map",
        lambda a, g: (g.mean(axis=(0, 1)), np.full(a.shape[:2], np.nan, np.float32)),
        quiet=True,
        real_model=False,
    )
    assert not result.passed
    assert "NaN" in result.message and "0/0" in result.message


def test_division_by_zero_on_an_empty_map_is_reported_as_nan():
    def my_grad_cam_map(activations, gradients):
        alpha = gradients.mean(axis=(0, 1))
        positive = np.maximum(np.tensordot(activations, alpha, axes=([2], [0])), 0)
        return alpha, positive / positive.max()  # 0/0 when nothing is positive

    result = check("grad_cam_map", my_grad_cam_map, quiet=True, real_model=False)
    assert not result.passed
    assert "nothing speaks for the class" in result.message and "NaN" in result.message
    assert sum(status == "ok" for _, status in result.cases) == len(result.cases) - 1


def test_wrong_shape_is_reported():
    result = check("channel_weights", lambda g: g.mean(axis=0), quiet=True, real_model=False)
    text = flat(result.message)
    assert "The shape is wrong: expected (4,), you returned (3, 4)." in text
    assert "averaged over the height only" in text


def test_wrong_dtype_is_reported():
    result = check("guided_relu_gradient", lambda x, up: (up > 0).astype(np.int64), quiet=True)
    assert not result.passed
    assert "dtype is int64" in flat(result.message)


def test_the_unfilled_stub_and_a_missing_return_are_reported():
    def my_channel_weights(gradients):
        # your code here
        return ...

    def forgot_return(gradients):
        gradients.mean(axis=(0, 1))

    stub = check("channel_weights", my_channel_weights, quiet=True, real_model=False)
    assert "the stub is not filled in yet" in flat(stub.message)
    missing = check("channel_weights", forgot_return, quiet=True, real_model=False)
    assert "Is the `return` statement missing?" in flat(missing.message)


def test_wrong_type_for_the_class_index_is_reported(context):
    result = run("class_for_region", lambda e, b: 3.5, context)
    assert not result.passed and "return the class index, an int" in flat(result.message)
    result = run("class_for_region", lambda e, b: e[0], context)
    assert not result.passed and "class_index" in flat(result.message)


def test_changing_the_inputs_in_place_is_noted_but_harmless():
    def my_channel_weights(gradients):
        gradients /= gradients.shape[0] * gradients.shape[1]
        return gradients.sum(axis=(0, 1))

    result = check("channel_weights", my_channel_weights, quiet=True, real_model=False)
    assert result.passed, result.message
    assert any("changed its input arrays in place" in n for n in result.notes)


def test_not_a_function_and_unknown_exercise():
    result = check("channel_weights", np.zeros(3), quiet=True)
    assert not result.passed and "needs your function itself" in result.message
    with pytest.raises(ValueError, match="unknown exercise"):
        check("no_such_exercise", solution_channel_weights)


def test_result_object_prints_once_in_a_notebook(capsys):
    result = exercises.check_channel_weights(solution_channel_weights, real_model=False)
    assert bool(result) is True and "passed=True" in repr(result)
    first = capsys.readouterr().out
    assert first.startswith("channel_weights, checking solution_channel_weights: passed")
    result._ipython_display_()  # the cell's value, right after the check printed: nothing more
    assert capsys.readouterr().out == ""
    result._ipython_display_()  # shown again later: the verdict
    assert capsys.readouterr().out == first


def test_missing_real_inputs_are_a_note_not_a_crash(monkeypatch):
    def unavailable(*args, **kwargs):
        raise RuntimeError("no photo here")

    monkeypatch.setattr(real_inputs, "_cat_dog_top5", unavailable)
    result = check("class_for_region", solution_class_for_region, quiet=True)
    assert result.passed
    assert any("real-model case" in n and "skipped" in n for n in result.notes)


# --------------------------------------------------------------------------
# The real-model exercise on the cat_dog photo
# --------------------------------------------------------------------------


def test_class_for_region_real_cases_find_the_dog_and_the_cat(context):
    from helpers.exercises import _cat_dog_top5

    explanations, _, _ = _cat_dog_top5(context["classifier"], context["image"])
    cases, notes = EXERCISES["class_for_region"].cases(real_model=True, **context)
    assert notes == []
    real = [c for c in cases if "real model" in c.description]
    assert len(real) == 2
    names = {
        c.description.rsplit(" ", 1)[-1]: next(
            e["gradcam"].class_name for e in explanations if e["gradcam"].class_index == c.expected
        )
        for c in real
    }
    assert names["cat"] == "tiger cat"
    assert names["dog"] == "bull mastiff"


# --------------------------------------------------------------------------
# 03: each case is judged by the rule of its unit (ReLU: x > 0; ReLU6: 0 < x < 6)
# --------------------------------------------------------------------------


def plain_relu_answer(x, upstream):
    """What notebook 03 asked for before ReLU6: right for a plain ReLU, no max_value."""
    return upstream * ((x > 0) & (upstream > 0))


def _statuses(result):
    return dict(result.cases)


def _relu_cases(result):
    return [d for d, _ in result.cases if d.startswith("ReLU,")]


def _relu6_cases(result):
    return [d for d, _ in result.cases if d.startswith("ReLU6") or "real model" in d]


def test_the_real_case_is_a_relu6_judged_by_its_rule(context):
    x, upstream, max_value = real_inputs._chelsea_relu_inputs(context["classifier"])
    assert max_value == 6.0  # read from EfficientNet-Lite0's top_activation
    assert ((x >= 6) & (upstream > 0)).sum() > 0  # where the two rules disagree: the case tells them apart
    cases, notes = EXERCISES["guided_relu_gradient"].cases(real_model=True, **context)
    assert notes == []
    real = next(c for c in cases if "real model" in c.description)
    assert "a ReLU6 (max_value=6: forward mask 0 < x < 6)" in real.description
    assert len(real.args) == 3 and real.args[2] == 6.0
    np.testing.assert_array_equal(real.expected, solution_guided_relu_gradient(x, upstream, 6.0))
    assert not np.allclose(real.expected, plain_relu_answer(x, upstream))


def test_hand_made_relu6_case_worked_by_hand():
    cases, _ = EXERCISES["guided_relu_gradient"].cases(real_model=False)
    flat_above_6 = next(c for c in cases if c.description.startswith("ReLU6 (max_value=6): units at and above 6"))
    # x:        -1   0   0.5  5.5  6    7.5  9   3
    # upstream:  1   2   1    2    1    1   -1  -2
    np.testing.assert_array_equal(flat_above_6.expected, [0, 0, 1, 2, 0, 0, 0, 0])
    no_limit = next(c for c in cases if c.description.startswith("ReLU, no upper limit"))
    assert len(no_limit.args) == 2  # a plain ReLU case: called with two arguments
    np.testing.assert_array_equal(no_limit.expected, [0, 1, 1, 2, 0])


def test_plain_relu_answer_passes_every_relu_case(context):
    result = run("guided_relu_gradient", plain_relu_answer, context)
    statuses = _statuses(result)
    assert len(_relu_cases(result)) == 6
    assert all(statuses[d] == "ok" for d in _relu_cases(result)), result.message
    # The ReLU6 cases pass max_value as a third argument: the verdict says how to take it.
    assert not result.passed
    assert all(statuses[d] == "raised" for d in _relu6_cases(result))
    text = flat(result.message)
    assert "takes 2 positional arguments but 3 were given" in text
    assert "(x, upstream, max_value=None)" in text


def test_relu6_aware_answer_passes_the_relu6_cases_and_every_relu_case(context):
    result = run("guided_relu_gradient", solution_guided_relu_gradient, context)
    assert result.passed, result.message
    statuses = _statuses(result)
    assert len(_relu6_cases(result)) == 3 and any("real model" in d for d in _relu6_cases(result))
    assert all(status == "ok" for status in statuses.values())


def test_answer_ignoring_max_value_fails_the_relu6_cases_and_says_which_rule(context):
    def my_guided_relu_gradient(x, upstream, max_value=None):
        return upstream * ((x > 0) & (upstream > 0))

    result = run("guided_relu_gradient", my_guided_relu_gradient, context)
    assert not result.passed
    statuses = _statuses(result)
    assert all(statuses[d] == "ok" for d in _relu_cases(result))
    assert all(statuses[d] == "values" for d in _relu6_cases(result))
    text = flat(result.message)
    assert "This case is a ReLU6 (called with max_value=6 as the third argument): forward mask 0 < x < 6" in text
    assert "the plain ReLU's forward mask x > 0" in text


@pytest.mark.parametrize(
    ("label", "fn"),
    [
        ("ReLU6 everywhere", lambda x, up, m=None: up * ((x > 0) & (x < 6) & (up > 0))),
        ("deconvnet", lambda x, up, m=None: up * (up > 0)),
        ("plain backprop through ReLU6", lambda x, up, m=None: up * _on(x, m)),
    ],
)
def test_wrong_relu6_answers_still_fail(label, fn, context):
    result = run("guided_relu_gradient", fn, context)
    assert not result.passed
    assert "This case is a" in result.message


# --------------------------------------------------------------------------
# 07: the area under a deletion curve; 08: Grad-CAM++'s channel weights
# --------------------------------------------------------------------------


def test_deletion_auc_cases_worked_by_hand():
    cases, _ = EXERCISES["deletion_auc"].cases(real_model=False)
    expected = {
        "a straight fall": 0.5,
        "a fast fall": 0.25 + 0.05,  # (0.9 + 0.1) / 2 * 0.5 + (0.1 + 0.1) / 2 * 0.5
        "a flat curve": 0.4,
        "uneven steps": 0.06 + 0.045 + 0.0375 + 0.0375,  # heights 0.6, 0.3, 0.15, 0.075 times widths
        "an insertion curve": (0.125 + 0.35 + 0.55 + 0.65) * 0.25,
    }
    for case in cases:
        key = next(k for k in expected if case.description.startswith(k))
        assert float(case.expected) == pytest.approx(expected[key]), case.description


def test_deletion_auc_real_case_is_notebook_07s_curve(context):
    from helpers import metrics

    fractions, scores = real_inputs._cat_dog_deletion_curve(context["classifier"], context["image"])
    assert fractions.shape == scores.shape == (21,) and fractions[0] == 0 and fractions[-1] == 1
    assert 0 < metrics.auc(fractions, scores) < scores[0]  # deleting Grad-CAM's pixels lowers p(bull mastiff)


def test_deletion_auc_accepts_any_number_type(context):
    for fn in (lambda f, p: np.float32(np.trapezoid(p, f)), lambda f, p: np.asarray(np.trapezoid(p, f))):
        result = run("deletion_auc", fn, context)
        assert result.passed and result.notes == (), result.message


def test_grad_cam_plus_plus_cases_worked_by_hand():
    cases, _ = EXERCISES["grad_cam_plus_plus_weights"].cases(real_model=False)
    by_hand = cases[0]
    # sum A = 4, alpha = 1 / (2 + 4 g) where g != 0: g = 1 -> 1/6, g = 0.5 -> 1/4, g = -1 -> -1/2, g = 0 -> 0
    # w = 1/6 * 1 + 1/4 * 0.5 + (-1/2) * ReLU(-1) + 0 = 7/24
    np.testing.assert_allclose(by_hand.expected, [7 / 24])
    gap = next(c for c in cases if c.description.startswith("global average pooling"))
    a, g = gap.args
    z = a.shape[0] * a.shape[1]
    v = g[0, 0] * z  # the dense weight: the gradient is v / Z at every position
    np.testing.assert_allclose(gap.expected, np.maximum(v, 0) / (2 + a.mean(axis=(0, 1)) * v), rtol=1e-6)


def test_grad_cam_plus_plus_real_case_is_a_gap_layer(context):
    activations, gradients = real_inputs._chelsea_gradients(context["classifier"])
    # EfficientNet-Lite0: global average pooling, then one dense layer. The gradient is v_k / 49 everywhere,
    # so Grad-CAM++'s weights are ReLU(v) / (2 + mean(A) v): a float32 answer still matches the reference.
    np.testing.assert_allclose(gradients, np.broadcast_to(gradients[:1, :1], gradients.shape), rtol=1e-5, atol=1e-9)
    v = gradients[0, 0].astype(np.float64) * 49
    expected = np.maximum(v, 0) / (2 + activations.astype(np.float64).mean(axis=(0, 1)) * v)
    cases, _ = EXERCISES["grad_cam_plus_plus_weights"].cases(real_model=True, **context)
    np.testing.assert_allclose(cases[-1].expected, expected, rtol=1e-4, atol=1e-9)


def test_grad_cam_plus_plus_without_the_zero_guard_is_reported_as_nan(context):
    def my_weights(activations, gradients):
        alpha = gradients**2 / (2 * gradients**2 + activations.sum(axis=(0, 1)) * gradients**3)
        return (alpha * np.maximum(gradients, 0)).sum(axis=(0, 1))

    result = run("grad_cam_plus_plus_weights", my_weights, context)
    assert not result.passed
    assert "worked by hand" in result.message and "NaN" in result.message
    assert "alpha = 0 where the denominator is 0" in flat(result.message)


# --------------------------------------------------------------------------
# The exercise cells at the end of notebooks 02-05 (and 07, 08 once their cells are pasted in)
# --------------------------------------------------------------------------

EXERCISE_NOTEBOOKS = {
    "02": "02_grad_cam",
    "03": "03_guided_backprop",
    "04": "04_guided_grad_cam",
    "05": "05_class_discrimination",
    "07": "07_faithfulness_and_localization",
    "08": "08_layers_and_other_cams",
}
CELLS_TO_COME = {"07", "08"}  # their checkers exist; the cells are checked here from the day they are added


def spec_cells():
    """The exercise cells of notebooks 02-05: from the "## Exercise" heading to the end, as dicts."""
    cells = []
    for number, name in EXERCISE_NOTEBOOKS.items():
        notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
        started = False
        for position, cell in enumerate(notebook["cells"][:-1]):  # the last cell is navigation
            source = "".join(cell["source"])
            started = started or (cell["cell_type"] == "markdown" and source.startswith("## Exercise"))
            if started:
                cells.append(
                    {
                        "id": f"{number}.{position}",
                        "type": cell["cell_type"],
                        "metadata": cell["metadata"],
                        "source": source,
                    }
                )
    return cells


def test_cell_spec_is_well_formed():
    cells = spec_cells()
    notebooks = sorted({c["id"][:2] for c in cells})
    pasted = [n for n in notebooks if n in CELLS_TO_COME]
    assert notebooks == ["02", "03", "04", "05", *pasted]
    hidden = [c for c in cells if c["metadata"].get("jupyter", {}).get("source_hidden")]
    checks = [c for c in cells if c["type"] == "code" and "check_" in c["source"] and "def " not in c["source"]]
    assert len(hidden) == len(checks) == 5 + len(pasted)
    for cell in hidden:
        assert cell["type"] == "code" and cell["source"].startswith("def solution_")
    for cell in cells:
        assert "NBVAL" not in cell["source"]
        if cell["type"] == "code" and cell["source"].startswith("def my_"):
            assert "return ..." in cell["source"] and "np." not in cell["source"].split('"""')[-1]


@pytest.mark.parametrize("notebook", list(EXERCISE_NOTEBOOKS))
def test_cells_run_top_to_bottom_and_the_solutions_pass(notebook, context, capsys, monkeypatch):
    if notebook in CELLS_TO_COME and not any(c["id"].startswith(notebook) for c in spec_cells()):
        pytest.skip(f"notebook {notebook} has no exercise cells yet")
    # The checks in the cells load their own EfficientNet-Lite0: hand them the session's instead.
    monkeypatch.setitem(exercises._real_cache, "lite0", context["classifier"])
    namespace = {"np": np}  # every notebook imports numpy as np in its imports cell
    outputs = []
    for cell in [c for c in spec_cells() if c["id"].startswith(notebook) and c["type"] == "code"]:
        exec(compile(cell["source"], f"cell {cell['id']}", "exec"), namespace)
        outputs.append(capsys.readouterr().out)
    verdicts = [o for o in outputs if o]
    assert verdicts and all(": passed, all" in v and "checking solution_" in v for v in verdicts), verdicts
    # A student who runs the unfilled stub through the same check is told so, kindly.
    stubs = [name for name in namespace if name.startswith("my_")]
    assert stubs
    for name in stubs:
        exercise = name[len("my_") :]
        result = check(exercise, namespace[name], quiet=True, real_model=False)
        assert not result.passed and "stub is not filled in" in result.message

"""The verdict: :func:`check` runs a student's function on every case of an exercise and says what it found.

Every exercise registers itself in :data:`EXERCISES` (``@register``) when its
notebook's module is imported; ``helpers.exercises`` imports them all.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from .judging import _show
from .results import Case, CaseResult, CheckResult
from .sandbox import _call, _copy, _describe_exception, _same_inputs

#: Seconds each case may take before the student's function is interrupted.
DEFAULT_TIMEOUT = 5.0
OK, FAIL = "✓", "✗"

#: name -> exercise, in the order of the notebooks.
EXERCISES: dict = {}


def register(cls):
    """Class decorator: add one instance of the exercise ``cls`` to :data:`EXERCISES`."""
    EXERCISES[cls.name] = cls()
    return cls


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
            cat_dog photo, for ``class_for_region``, ``deletion_auc`` and ``marker_share``).
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

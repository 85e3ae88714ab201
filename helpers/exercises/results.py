"""What a check produces: one :class:`Case` per input, a :class:`CaseResult` per run, one :class:`CheckResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

"""Running the student's function safely: a worker thread, a time limit, copies of the inputs.

A function that does not return in time is interrupted (an exception is raised
inside its thread, which stops pure-Python loops); one stuck inside a long C
call cannot be, and keeps running in the background until it returns. An
exception is described in one line, with the line of the student's code it
came from, never with a traceback.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


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

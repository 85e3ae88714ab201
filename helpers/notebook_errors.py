"""In a notebook, a :class:`~helpers.errors.HelpersError` is shown as one clear line.

A mistyped class or layer in a parameters cell raises an error whose message says
what to do; the full traceback through ``helpers`` internals would push that line
off the right edge. :func:`install` (run by ``import helpers``) registers an IPython
handler that shows ``ClassIndexError: unknown ImageNet class ...`` and how to see
the rest: ``%tb`` in the next cell, or :func:`show_full_tracebacks`.
Every other exception keeps IPython's normal display.
"""

from __future__ import annotations

import sys

from .errors import HelpersError

HINT = "(a helpers error: the line above says what to change; full traceback: run %tb)"
_state = {"full": False}


def show_full_tracebacks(full: bool = True) -> None:
    """Show the whole traceback of helpers errors again (``False``: one line, the default)."""
    _state["full"] = bool(full)


def _one_line(shell, etype, value, tb, tb_offset=None):
    # %tb and %debug read these; IPython sets them only for the errors it shows itself.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if _state["full"]:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None
    lines = [f"{etype.__name__}: {value}", HINT]
    shell._showtraceback(etype, value, lines)
    return lines


def install(shell=None) -> bool:
    """Register the one-line display in ``shell`` (default: the running IPython). True if installed."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with Jupyter
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((HelpersError,), _one_line)
    return True

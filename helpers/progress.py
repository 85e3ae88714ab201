"""Progress for slow loops: a bar while they run; in a notebook, one line of text once done.

A notebook saved after a run must not show a bar frozen at "0%" (the widget's state is
not stored, only its first text): here the bar is displayed with a display id and, when
the loop ends, replaced by a plain line such as ``Score-CAM batches: 8 of 8 done``.
Outside a notebook (scripts, the CLI) it is an ordinary ``tqdm`` bar on stderr.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be displayed)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Line:
    """What replaces the bar: plain text, the same in every front end."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def progress(iterable: Iterable[T], desc: str, *, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Yield from ``iterable`` while showing ``desc`` and how far it got.

    Args:
        iterable: the loop's items.
        desc: what is being done, e.g. ``"Score-CAM batches"``.
        total: number of items, when ``len(iterable)`` does not say it.
        enabled: False shows nothing (the items are yielded all the same).
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if not enabled:
        yield from iterable
        return
    if not in_notebook():
        from tqdm import tqdm

        yield from tqdm(iterable, desc=desc, total=total)
        return
    yield from _notebook_bar(iterable, desc, total)


def _notebook_bar(iterable, desc, total):
    import ipywidgets as widgets
    from IPython.display import display

    bar = widgets.IntProgress(value=0, min=0, max=max(total or 1, 1), description=desc)
    bar.style.description_width = "initial"
    handle = display(bar, display_id=True)
    done = 0
    try:
        for item in iterable:
            yield item
            done += 1
            bar.value = done
    finally:
        of = f" of {total}" if total is not None else ""
        handle.update(_Line(f"{desc}: {done}{of} done"))
        bar.close()

"""nbval, tolerant of floating-point noise in printed numbers (and only of that).

The stored notebook outputs come from one machine; another CPU, thread count or oneDNN setting
sums floats in another order, so a printed 0.37 may come out as 0.38. This plugin wraps nbval's
``IPyNbCell.compare_outputs``: when a cell's text output (``stdout`` stream or ``text/plain``)
differs from the stored one only in numbers, each within the tolerance below, the stored text
stands in for the new one and nbval compares as usual. Any other difference still fails, with
nbval's own report (plus a line naming the numbers out of tolerance).

The rule, applied after nbval's sanitising (``--nbval-sanitize-with``):

* Numbers are found by ``NUMBER``: an optional sign, digits with an optional decimal point, an
  optional exponent with a sign (``1e-05``, ``2.5E+03``: Python and NumPy always write the sign).
  A number must stand alone: not touching a letter, digit, ``_`` or ``.`` on its left, nor a
  letter, digit or ``_`` (or ``.`` then a digit) on its right. So ``7x7``, ``451x300``,
  ``block5_conv3``, ``efficientnet_lite0`` and hex digests such as ``72e053fba7ee3736`` hold no
  number and compare exactly, as text. ``p=0.088``, ``(224, 224)``, ``45.5%`` and ``-0.48`` do.
* The text between numbers must be equal, except that runs of spaces or tabs count as one space
  and spaces touching a number are ignored: width-aligned columns shift when ``-0.00`` turns
  into ``0.00`` or ``9.99`` into ``10.00``, and NumPy drops a sign column. Newlines are exact.
* Both texts must hold the same count of numbers, pairwise of the same kind (int or not).
* Integers (no point, no exponent) are counts, shapes, indices, seeds: they must be equal, digit
  for digit. A difference in a count is a real change, never rounding noise.
* Other numbers pass when ``|test - ref| <= max(ATOL, RTOL * |ref|) + ulp(ref)``, where
  ``ulp(ref)`` is one unit in the last digit printed in the reference (0.01 for ``0.37``,
  1e-06 for ``1.5e-05``). The ``ulp`` term absorbs a value that moved across a rounding boundary
  (0.37 vs 0.38 passes; 0.37 vs 0.52 fails). A number ending in a bare point (NumPy's ``0.``
  or ``1.``) gets no ``ulp``: we cannot tell how many zeros NumPy stripped.
* ``RTOL = 1e-3``: numbers printed at full precision (``repr`` of a float32) differ in their
  5th-7th significant digit between machines; a thousandth is far above that noise and far
  below any change a reader would notice. ``ATOL = 1e-6`` is for values that should be 0 but
  come out as 1e-08 vs -3e-09. Arithmetic is exact (``decimal``), so boundaries do not wobble.

Pure functions (``numbers_match``, ``out_of_tolerance``) are tested in
``tests/test_nbval_tolerance.py``, which also runs nbval end to end on tiny notebooks.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from decimal import Decimal

RTOL = Decimal("1e-3")
ATOL = Decimal("1e-6")

NUMBER = re.compile(
    r"(?<![\w.])"  # not the tail of a word, number or version
    r"[-+]?(?:\d+\.\d*|\.\d+|\d+)"  # 12, 12.5, 12., .5
    r"(?:[eE][-+]\d+)?"  # exponent, always signed in Python and NumPy output
    r"(?!\w|\.\d)"  # not the head of a word, hex digest or version
)
_SPACES = re.compile(r"[ \t]+")

# Where nbval keeps text that may hold numbers: stream name or MIME type -> the comparison key.
TEXT_KEYS = ("stdout", "text/plain")


def _is_int(token: str) -> bool:
    return not any(c in token for c in ".eE")


def _ulp(token: str) -> Decimal:
    """One unit in the last printed digit ("0.37" -> 0.01, "1.5e-05" -> 1e-06); 0 for "0."."""
    if re.split("[eE]", token)[0].endswith("."):
        return Decimal(0)
    return Decimal(1).scaleb(Decimal(token).as_tuple().exponent)


def _split(text: str) -> tuple[list[str], list[str]]:
    """The numbers of ``text`` and the pieces between them (one more piece than numbers)."""
    numbers = NUMBER.findall(text)
    pieces = NUMBER.split(text)
    return numbers, pieces


def _layout(piece: str, first: bool, last: bool) -> str:
    """A piece of text between numbers with flexible spacing: runs as one space, none at a number."""
    piece = _SPACES.sub(" ", piece)
    if not first:
        piece = piece.lstrip(" \t")
    if not last:
        piece = piece.rstrip(" \t")
    return piece


def within_tolerance(ref: str, test: str) -> bool:
    """Whether the printed number ``test`` may stand for the stored ``ref`` (see the module doc)."""
    if _is_int(ref) or _is_int(test):
        return ref == test
    ref_value, test_value = Decimal(ref), Decimal(test)
    allowed = max(ATOL, RTOL * abs(ref_value)) + _ulp(ref)
    return abs(test_value - ref_value) <= allowed


def out_of_tolerance(ref: str, test: str) -> list[tuple[str, str]] | None:
    """The (stored, new) number pairs that differ too much; None if the texts differ otherwise."""
    ref_numbers, ref_pieces = _split(ref)
    test_numbers, test_pieces = _split(test)
    if len(ref_numbers) != len(test_numbers):
        return None
    last = len(ref_pieces) - 1
    for index, (a, b) in enumerate(zip(ref_pieces, test_pieces)):
        if _layout(a, index == 0, index == last) != _layout(b, index == 0, index == last):
            return None
    if any(_is_int(a) != _is_int(b) for a, b in zip(ref_numbers, test_numbers)):
        return None
    return [(a, b) for a, b in zip(ref_numbers, test_numbers) if not within_tolerance(a, b)]


def numbers_match(ref: str, test: str) -> bool:
    """Whether ``test`` equals ``ref`` up to floating-point noise in its numbers."""
    return ref == test or out_of_tolerance(ref, test) == []


# ---------------------------------------------------------------- nbval glue


def _text_slots(outputs) -> dict[str, list[tuple[int, str]]]:
    """(output index, field) of each text nbval compares, by comparison key, in output order."""
    slots = defaultdict(list)
    for index, output in enumerate(outputs):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            slots["stdout"].append((index, "text"))
        elif "text/plain" in output.get("data", {}):
            slots["text/plain"].append((index, "text/plain"))
    return slots


def _get(output, field: str) -> str:
    return output["text"] if field == "text" else output["data"][field]


def _set(output, field: str, value: str) -> None:
    if field == "text":
        output["text"] = value
    else:
        output["data"][field] = value


def absorb_noise(test: list, ref: list, sanitize) -> tuple[list, list[str]]:
    """``test`` with each text that matches its stored one up to number noise replaced by it.

    Also returns a note per text whose only differences are numbers out of tolerance. Outputs
    are paired as nbval pairs them (the n-th stdout with the n-th stdout); the new outputs
    themselves are not modified (nbval keeps them for its reports).
    """
    patched, notes = list(test), []
    test_slots, ref_slots = _text_slots(test), _text_slots(ref)
    for key in TEXT_KEYS:
        if len(test_slots[key]) != len(ref_slots[key]):
            continue  # nbval reports the different number of outputs
        for (t_index, t_field), (r_index, r_field) in zip(test_slots[key], ref_slots[key]):
            new, stored = _get(test[t_index], t_field), _get(ref[r_index], r_field)
            if not isinstance(new, str) or not isinstance(stored, str):
                continue
            new_clean, stored_clean = sanitize(new), sanitize(stored)
            if new_clean == stored_clean:
                continue
            bad = out_of_tolerance(stored_clean, new_clean)
            if bad == []:
                patched[t_index] = copy.deepcopy(patched[t_index])
                _set(patched[t_index], t_field, stored)
            elif bad:
                pairs = ", ".join(f"{a} -> {b}" for a, b in bad)
                notes.append(f"numbers beyond float-noise tolerance in {key}: {pairs}")
    return patched, notes


def _tolerant(compare_outputs):
    """nbval's ``compare_outputs``, first absorbing float noise in text outputs."""

    def compare_outputs_tolerantly(self, test, ref, skip_compare=None):
        patched, notes = absorb_noise(test, ref, self.sanitize)
        equal = compare_outputs(self, patched, ref, skip_compare)
        if not equal:
            self.comparison_traceback.extend(notes)
        return equal

    compare_outputs_tolerantly.tolerates_float_noise = True
    compare_outputs_tolerantly.__wrapped__ = compare_outputs
    return compare_outputs_tolerantly


def pytest_configure(config):
    if not (getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False)):
        return
    from nbval.plugin import IPyNbCell

    if not getattr(IPyNbCell.compare_outputs, "tolerates_float_noise", False):
        IPyNbCell.compare_outputs = _tolerant(IPyNbCell.compare_outputs)

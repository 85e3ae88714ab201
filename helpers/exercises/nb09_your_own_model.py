"""Notebook 09's exercise: how much of the Grad-CAM evidence sits on the shortcut marker?"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import real_inputs
from .judging import Mistake, _ArrayExercise, _close, _ints, _share, _show
from .real_inputs import _real_case_or_note
from .results import Case, CheckResult
from .verdict import check, register


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


@register
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
                explanations, photo_size, map_size = real_inputs._cat_dog_top5(classifier, image)
                dog = real_inputs._cat_dog_box("dog", photo_size, map_size)
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


def check_marker_share(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 09. ``fn(maps (m, H, W), box)`` -> the mean over the maps of each map's share inside ``box``.

    ``box``: ``(x0, y0, x1, y1)`` in map pixels, ``map[y0:y1, x0:x1]``; an all-zero map has share 0.
    Pass ``maps=`` and ``box=`` to add a case with your own maps (the notebook passes the small CNN's).
    """
    return check("marker_share", fn, **kwargs)

"""Notebook 05's exercise: which class's Grad-CAM map covers a region of the photo?"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from . import real_inputs
from .judging import Mistake, _Exercise, _scale_to_max, _share
from .real_inputs import _real_case_or_note
from .results import Case, CaseResult, CheckResult
from .verdict import check, register


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


@register
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
        from ..explain import HEATMAP, Explanation
        from ..imagenet import class_names, pretty

        names = class_names()

        def explanation(index, probability, heatmap):
            heatmap = np.asarray(heatmap, np.float32)
            return {
                "gradcam": Explanation(
                    method="gradcam",
                    kind=HEATMAP,
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
                # Looked up in the module at call time, so a test can replace it.
                explanations, photo_size, map_size = real_inputs._cat_dog_top5(classifier, image)
                made = []
                for animal in ("dog", "cat"):
                    label = f"the {animal}"
                    box = real_inputs._cat_dog_box(animal, photo_size, map_size)
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


def check_class_for_region(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 05. ``fn(explanations, box)`` -> the class index whose Grad-CAM map has the largest share in ``box``.

    ``explanations``: a list like ``explain_classes(classifier, photo, top_k=5)``, one dict per class with
    at least ``"gradcam"``; ``box``: ``(x0, y0, x1, y1)`` in map cells, ``map[y0:y1, x0:x1]``.
    """
    return check("class_for_region", fn, **kwargs)

"""Notebook 04's exercise: Guided Grad-CAM, the guided backprop picture times the Grad-CAM map."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .judging import Mistake, _ArrayExercise, _close, _ints
from .real_inputs import _chelsea_guided, _real_case_or_note
from .results import Case, CheckResult
from .verdict import check, register


def _reference_guided_grad_cam(guided: np.ndarray, cam: np.ndarray) -> np.ndarray:
    # As helpers.explain.explain builds Explanation("guided_gradcam").map.
    return guided * cam[..., None]


@register
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


def check_guided_grad_cam(fn: Callable, **kwargs) -> CheckResult:
    """Notebook 04. ``fn(guided (H, W, 3), cam (H, W))`` -> Guided Grad-CAM ``(H, W, 3)``."""
    return check("guided_grad_cam", fn, **kwargs)

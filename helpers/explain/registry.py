"""Every explanation method, once: name, function, title, kind of picture, what it needs.

The CLI, the widgets, the sanity checks, the benchmarks and the notebooks read
this table. Adding a method is one function (``method(classifier, image,
target=None, *, layer=None, ...) -> Explanation``) plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import OptionError
from .base import GRADIENT, HEATMAP
from .gradcam import counterfactual, counterfactual_weights, grad_cam, grad_cam_weights
from .gradcam_plus_plus import grad_cam_plus_plus, grad_cam_plus_plus_weights
from .guided import guided_backprop, guided_grad_cam, saliency
from .scorecam import score_cam


@dataclass(frozen=True)
class Method:
    """One explanation method.

    Attributes:
        name: the key used everywhere (``Explanation.method``, ``--method``, widgets).
        function: ``function(classifier, image, target=None, *, layer=None, ...) -> Explanation``.
        title: how figures and menus call it.
        kind: the picture it gives: ``"heatmap"`` (H, W) in [0, 1] or ``"gradient"`` (H, W, 3).
        needs_layer: it weights the feature map of a conv layer.
        channel_weights: for CAMs computed from one pass, ``f(A, dA) -> weights``
            (``A`` the feature map, ``dA`` the class score's gradient, both (h, w, K));
            :func:`~helpers.explain.explain_classes` computes these for many classes at once.
        guided: it needs guided-backprop gradients (so ReLU/ReLU6 models only).
        cost: one line on what it costs, for people choosing a method.
    """

    name: str
    function: Callable
    title: str
    kind: str
    needs_layer: bool
    channel_weights: Callable | None = None
    guided: bool = False
    cost: str = "one forward and one backward pass"

    @property
    def one_pass(self) -> bool:
        """Computed by :func:`~helpers.explain.explain_classes` from one traced pass."""
        return self.channel_weights is not None or self.guided


_ENTRIES = (
    Method("gradcam", grad_cam, "Grad-CAM", HEATMAP, True, channel_weights=grad_cam_weights),
    Method(
        "counterfactual",
        counterfactual,
        "Counterfactual Grad-CAM",
        HEATMAP,
        True,
        channel_weights=counterfactual_weights,
    ),
    Method(
        "gradcam_plus_plus", grad_cam_plus_plus, "Grad-CAM++", HEATMAP, True, channel_weights=grad_cam_plus_plus_weights
    ),
    Method(
        "score_cam",
        score_cam,
        "Score-CAM",
        HEATMAP,
        True,
        cost="one forward pass per channel used (max_channels, default 256)",
    ),
    Method("guided_backprop", guided_backprop, "Guided backprop", GRADIENT, False, guided=True),
    Method("guided_gradcam", guided_grad_cam, "Guided Grad-CAM", GRADIENT, True, guided=True),
    Method("saliency", saliency, "Saliency", GRADIENT, False),
)

#: name -> :class:`Method`, in the order figures and menus list them.
REGISTRY: dict[str, Method] = {m.name: m for m in _ENTRIES}
#: What :func:`~helpers.explain.explain_classes` gives by default (the four of the Grad-CAM paper).
METHODS = ("gradcam", "counterfactual", "guided_backprop", "guided_gradcam")


def get_method(name: str) -> Method:
    """The registry entry called ``name``.

    Raises:
        OptionError: no method has that name (the message lists them).
    """
    if not isinstance(name, str) or name not in REGISTRY:
        raise OptionError(f"unknown method {name!r}: choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def methods_of_kind(kind: str) -> tuple[str, ...]:
    """Names of the registered methods that give pictures of ``kind`` ("heatmap" or "gradient")."""
    return tuple(name for name, m in REGISTRY.items() if m.kind == kind)

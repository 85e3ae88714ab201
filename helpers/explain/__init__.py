"""Explanation methods: Grad-CAM, guided backprop, Guided Grad-CAM, counterfactuals.

All take ``(classifier, image, target=None, *, layer=None)`` and return an
:class:`Explanation` holding NumPy arrays; :func:`explain_classes` gives every method
for several classes (or the top-K) from one forward pass.
"""

from .activations import guided_relu, patched_activations, use_backward_rule
from .layers import default_layer, find_layer
from .maps import channel_weights, grad_cam_map, normalize_map, upsample, weighted_sum
from .methods import (
    METHODS,
    Explanation,
    counterfactual,
    explain_classes,
    grad_cam,
    guided_backprop,
    guided_grad_cam,
    model_input,
    saliency,
)
from .split import feature_and_logits_model, split_model

__all__ = [
    "METHODS",
    "Explanation",
    "channel_weights",
    "counterfactual",
    "default_layer",
    "explain_classes",
    "feature_and_logits_model",
    "find_layer",
    "grad_cam",
    "grad_cam_map",
    "guided_backprop",
    "guided_grad_cam",
    "guided_relu",
    "model_input",
    "normalize_map",
    "patched_activations",
    "saliency",
    "split_model",
    "upsample",
    "use_backward_rule",
    "weighted_sum",
]

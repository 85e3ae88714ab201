"""Explanation methods, one calling convention::

    method(classifier, image, target=None, *, layer=None, ...) -> Explanation

Grad-CAM and its counterfactual, Grad-CAM++, Score-CAM (every CAM is channel
weights times the feature map, on one mechanism: :func:`cam_explanation`),
saliency, guided backprop, and Guided Grad-CAM composed of guided backprop and
Grad-CAM. :data:`REGISTRY` lists them; :func:`explain_classes` gives the
one-pass methods for several classes (or the top-K) from one forward pass.
"""

from ..graph.activations import guided_relu, patched_activations, use_backward_rule
from ..graph.layers import block_output_layers, default_layer, find_layer, stage_layers
from ..graph.split import feature_and_logits_model, split_model
from .base import (
    GRADIENT,
    HEATMAP,
    Explanation,
    LayerGradients,
    activations_and_gradients,
    cam_explanation,
    model_input,
)
from .classes import explain_classes
from .gradcam import counterfactual, counterfactual_weights, grad_cam, grad_cam_weights
from .gradcam_plus_plus import grad_cam_plus_plus, grad_cam_plus_plus_weights
from .guided import compose_guided_grad_cam, guided_backprop, guided_grad_cam, saliency
from .maps import channel_weights, grad_cam_map, normalize_map, upsample, weighted_sum
from .registry import METHODS, REGISTRY, Method, get_method, methods_of_kind
from .scorecam import channel_masks, score_cam

__all__ = [
    "GRADIENT",
    "HEATMAP",
    "METHODS",
    "REGISTRY",
    "Explanation",
    "LayerGradients",
    "Method",
    "activations_and_gradients",
    "block_output_layers",
    "cam_explanation",
    "channel_masks",
    "channel_weights",
    "compose_guided_grad_cam",
    "counterfactual",
    "counterfactual_weights",
    "default_layer",
    "explain_classes",
    "feature_and_logits_model",
    "find_layer",
    "get_method",
    "grad_cam",
    "grad_cam_map",
    "grad_cam_plus_plus",
    "grad_cam_plus_plus_weights",
    "grad_cam_weights",
    "guided_backprop",
    "guided_grad_cam",
    "guided_relu",
    "methods_of_kind",
    "model_input",
    "normalize_map",
    "patched_activations",
    "saliency",
    "score_cam",
    "split_model",
    "stage_layers",
    "upsample",
    "use_backward_rule",
    "weighted_sum",
]

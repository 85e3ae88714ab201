"""What the methods need to know about a Keras model's graph, below everything else.

Finding layers (nested models included), the default Grad-CAM layer, block names,
the guided/plain backward rules patched into activations, splitting a model at a
layer, and the traced forward pass to logits. Knows nothing about classifiers,
photos or maps: ``models`` and ``explain`` both build on it.
"""

from .activations import guided_relu, patched_activations, use_backward_rule
from .forward import batch_limit, logits, softmax
from .layers import block_name, default_layer, find_layer, flat_layers
from .split import feature_and_logits_model, split_model

__all__ = [
    "batch_limit",
    "block_name",
    "default_layer",
    "feature_and_logits_model",
    "find_layer",
    "flat_layers",
    "guided_relu",
    "logits",
    "patched_activations",
    "softmax",
    "split_model",
    "use_backward_rule",
]

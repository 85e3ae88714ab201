"""The one object every method takes: a Keras model plus what it needs to be explained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..imagenet import find_class


@dataclass(eq=False)
class Classifier:
    """A Keras image classifier that outputs logits, with everything around it.

    Methods never special-case a model by name: whatever differs between models
    (preprocessing, channel order, default layer, class names) lives here.

    Attributes:
        name: short name, e.g. ``"vgg16"`` or ``"efficientnet_lite0"``.
        model: ``keras.Model`` from preprocessed NHWC float32 input to logits
            (pre-softmax class scores), shape ``(batch, num_classes)``.
        preprocess: RGB values 0-255, NHWC (uint8 or float) -> model input.
        input_size: ``(height, width)`` the model expects.
        last_conv_layer: the layer Grad-CAM uses by default (None: the model has no
            conv layer, so only saliency and guided backprop apply).
        class_names: one human-readable name per output class.
        input_is_bgr: True when ``preprocess`` flips RGB to BGR (Caffe-style
            VGG16), so gradients w.r.t. the input must be flipped back for display.
        description: one line for people (what it is, where the weights came from).
        title: the model's name for figures (``"EfficientNet-Lite0"``); default ``name``.
        takes_photos: ``preprocess`` expects photos, RGB values 0-255, so images are
            checked for that range (a [0, 1] or already-preprocessed image is refused).
            False for a model wrapped without ``preprocess``: it takes its input values
            as they are, so only their shape and finiteness are checked.
    """

    name: str
    model: object
    preprocess: Callable[[np.ndarray], np.ndarray]
    input_size: tuple[int, int]
    last_conv_layer: str | None
    class_names: tuple[str, ...]
    input_is_bgr: bool = False
    description: str = ""
    takes_photos: bool = True
    title: str = ""

    def __post_init__(self):
        if not self.title:
            self.title = self.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_index(self, target: int | str) -> int:
        """The output index for a class given by index or by name.

        Names match ignoring case, underscores, hyphens and extra spaces
        (``"tiger cat"`` == ``"Tiger_Cat"``). A name several classes share is
        refused unless its exact case picks one (see
        :func:`helpers.imagenet.find_class`, the lookup used here).

        Raises:
            ClassIndexError: the index is out of range, or the name is unknown or ambiguous.
        """
        return find_class(target, self.class_names, self.name)

    def pretty_name(self, index: int) -> str:
        """The class name for people: underscores become spaces."""
        return self.class_names[index].replace("_", " ")

    def logits(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Pre-softmax scores for RGB 0-255 images already at ``input_size`` (NHWC).

        A model that ends in a softmax still gives logits (its softmax is
        bypassed). ``batch_size`` splits a large batch into several passes.
        """
        from ..graph.forward import logits

        images = np.asarray(images, dtype=np.float32)
        step = batch_size or len(images)
        parts = [
            logits(self.model, np.asarray(self.preprocess(images[i : i + step]), dtype=np.float32))
            for i in range(0, len(images), step)
        ]
        return np.concatenate(parts)

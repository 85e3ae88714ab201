"""The one object every method takes: a Keras model plus what it needs to be explained.

Below both ``models`` (which build Classifiers from pretrained weights) and
``explain`` (which explains them), so neither needs the other.
"""

from .base import Classifier
from .wrap import as_classifier, wrap_keras_model

__all__ = ["Classifier", "as_classifier", "wrap_keras_model"]

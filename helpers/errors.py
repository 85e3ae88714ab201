"""Errors raised at the package's boundaries.

Every message says what went wrong *and* what to do about it, so that a
learner never has to read a traceback from deep inside Keras.
"""


class HelpersError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelUnavailableError(HelpersError, RuntimeError):
    """A model's weights cannot be had (for example: no network)."""


class UnsafePickleError(HelpersError, ValueError):
    """A pickle asked for something the restricted loader does not allow."""


class ImageError(HelpersError, ValueError):
    """A file or byte string is not an image we can use."""


class DataUnavailableError(HelpersError, RuntimeError):
    """A sample image could not be downloaded or found in the mirror."""


class UnknownSampleError(DataUnavailableError, ValueError):
    """The sample name is not in :data:`helpers.data.SAMPLES`.

    It is a :class:`DataUnavailableError` (the sample cannot be had) and a
    ``ValueError`` (the caller passed a bad argument), so either ``except``
    clause catches it.
    """


class LayerError(HelpersError, ValueError):
    """A layer name is unknown, or the model has no usable conv layer."""


class ClassIndexError(HelpersError, IndexError, ValueError):
    """A class index (or name) is not one of the model's classes."""


class UnsupportedActivationError(HelpersError, ValueError):
    """Guided backprop met an activation whose guided rule is not defined."""


class UnverifiedLayerError(UnsupportedActivationError):
    """Guided backprop met a layer or op whose backward pass it cannot check (Lambda, custom call)."""


class ModelError(HelpersError, ValueError):
    """The model cannot be explained as given (several outputs, non-RGB input, softmax hidden in a Lambda)."""


class OptionError(HelpersError, ValueError):
    """An option has a value outside its valid choices, or two options contradict each other."""


class KerasVersionError(HelpersError, RuntimeError):
    """The installed Keras lacks an internal that this operation needs, and there is no public way round it."""


class WeightsDownloadError(ModelUnavailableError):
    """VGG16's weights could not be downloaded; ``reason`` says why in a few words."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class UsageError(HelpersError):
    """A command-line value the user must change (a place that cannot be written, a format)."""

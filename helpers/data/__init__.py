"""Images in: named sample photos, the learner's own files, and model-sized copies.

Three jobs, each with errors a beginner can act on, one module each:

* :mod:`~helpers.data.samples` -- :func:`load_sample`, the photos the
  notebooks use (:data:`SAMPLES`: credit and licence of each; :data:`BOXES`:
  the dog and cat regions of ``"cat_dog"``), downloaded once, hash-checked
  and cached, or read from the offline mirror ``$GRADCAM_DATA_MIRROR``.
* :mod:`~helpers.data.images` -- :func:`load_image`, any photo file (or its
  bytes) as an ``(H, W, 3)`` ``uint8`` RGB array, whatever its mode and EXIF
  orientation, within a memory budget checked before decoding.
* :mod:`~helpers.data.arrays` -- :func:`check_image_array` and
  :func:`resize_for_model`, the whole photo squeezed to the model's input
  size exactly as ``keras.utils.load_img(..., interpolation="bilinear")`` does.

The loading limits (``MAX_PIXELS``, ``MAX_DECODED_BYTES``, ``MIN_SIDE``) are
re-exported here for reading; :func:`load_image` uses the ones in
:mod:`helpers.data.images`, so set them there to change them.
"""

from ..errors import DataUnavailableError, ImageError, UnknownSampleError
from .arrays import check_image_array, resize_for_model
from .images import MAX_DECODED_BYTES, MAX_PIXELS, MIN_SIDE, load_image
from .samples import (
    BOXES,
    CACHE_SUBDIR,
    DOWNLOAD_TIMEOUT,
    MIRROR_ENV,
    SAMPLES,
    Sample,
    load_sample,
    sample_path,
)

__all__ = [
    "BOXES",
    "CACHE_SUBDIR",
    "DOWNLOAD_TIMEOUT",
    "MAX_DECODED_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "MIRROR_ENV",
    "SAMPLES",
    "DataUnavailableError",
    "ImageError",
    "Sample",
    "UnknownSampleError",
    "check_image_array",
    "load_image",
    "load_sample",
    "resize_for_model",
    "sample_path",
]

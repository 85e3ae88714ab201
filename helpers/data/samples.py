"""The named sample photos the notebooks use, and the regions drawn on them.

:func:`load_sample` gives a photo by name. ``"cat_dog"`` (the Grad-CAM
paper's dog and cat; its authors' code explains ImageNet's 'boxer' and 'tiger cat') is downloaded once, checked against a
pinned sha256 and cached by :func:`keras.utils.get_file`; ``"chelsea"`` (a
tabby cat) ships inside scikit-image. :data:`SAMPLES` holds each photo's
credit and licence, :data:`BOXES` the hand-drawn dog and cat regions of
``"cat_dog"``.

Offline use: set the environment variable ``GRADCAM_DATA_MIRROR`` to a folder
that holds byte-identical copies of the sample files (e.g. ``cat_dog.jpg``).
The file is then "downloaded" from a ``file://`` URL through the same
``get_file`` call, so the hash check still runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, UnknownSampleError
from ..network import socket_timeout
from ..paths import keras_home
from .images import load_image

#: Environment variable naming a folder with offline copies of the samples.
MIRROR_ENV = "GRADCAM_DATA_MIRROR"

#: Sub-folder of the Keras cache (``$KERAS_HOME``, default ``~/.keras``).
CACHE_SUBDIR = "helpers_samples"

#: Seconds a stalled connection may stay silent before the download gives up.
DOWNLOAD_TIMEOUT = 10.0


@dataclass(frozen=True)
class Sample:
    """A named sample photo and where it comes from.

    Attributes:
        name: key in :data:`SAMPLES`, e.g. ``"cat_dog"``.
        description: what the photo shows.
        filename: file name in the cache, the mirror or the providing package.
        url: pinned download URL, or None if the file ships inside a package.
        sha256: hex sha256 of the file's bytes.
        credit: who made it / where it was published.
        licence: the licence it is used under.
    """

    name: str
    description: str
    filename: str
    url: str | None
    sha256: str
    credit: str
    licence: str

    @property
    def credit_line(self) -> str:
        """One line for a figure caption: description, credit and licence."""
        return f"{self.description}. {self.credit}. Licence: {self.licence}."


SAMPLES: dict[str, Sample] = {
    "cat_dog": Sample(
        name="cat_dog",
        description="A dog and a cat, 640x480 (the Grad-CAM paper explains 'boxer' and 'tiger cat')",
        filename="cat_dog.jpg",
        url=(
            "https://raw.githubusercontent.com/ramprs/grad-cam/"
            "ea86dc1c57c83bb183d574965f4c6e5dde56bcca/images/cat_dog.jpg"
        ),
        sha256="ec62e965a2699adb4d043c0468817062bc7aa5019358fdf8ececd104d3de36e8",
        credit="Photo from the Grad-CAM paper (Selvaraju et al., 2017), github.com/ramprs/grad-cam",
        licence="BSD (the grad-cam repository's licence)",
    ),
    "chelsea": Sample(
        name="chelsea",
        description="Chelsea, a tabby cat, 451x300",
        filename="chelsea.png",
        url=None,
        # Pinned in scikit-image's own data registry (skimage/data/_registry.py).
        sha256="596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        credit="Photo by Stefan van der Walt, shipped with scikit-image (skimage.data.chelsea)",
        licence="CC0",
    ),
}


BOXES: dict[str, tuple[int, int, int, int]] = {
    "dog": (215, 20, 475, 300),
    "cat": (125, 225, 570, 480),
}
"""The dog and the cat in the ``"cat_dog"`` photo (640x480), boxes drawn by hand.

Each box holds its whole animal, so the two overlap where the cat's head meets the
dog's front paws (``x`` 215-475, ``y`` 225-300): a share "outside both boxes" is
one minus the share in their union, not one minus the two shares.

Each box is ``(x0, y0, x1, y1)`` in the photo's pixels: ``x`` counts columns
from the left edge, ``y`` rows from the top edge, and ``x1``/``y1`` are
excluded, so the dog is ``photo[20:300, 215:475]``. This is the convention of
:func:`helpers.metrics.box_mask` and :func:`helpers.metrics.box_from_map`.
"""


def _get_sample(name: str) -> Sample:
    """Look a sample up by name.

    Args:
        name: a key of :data:`SAMPLES`.

    Returns:
        The sample's record.

    Raises:
        UnknownSampleError: the name is unknown (the message lists valid names).
    """
    try:
        return SAMPLES[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in SAMPLES)
        raise UnknownSampleError(f"unknown sample {name!r}: choose one of {valid}") from None


def _mirror_file(sample: Sample) -> Path | None:
    """Return the sample's file in the offline mirror, if the mirror has it.

    Args:
        sample: the sample to look for.

    Returns:
        The absolute path of the mirrored file, or None if ``GRADCAM_DATA_MIRROR``
        is unset or the folder does not hold the file.
    """
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    # resolve(): a relative mirror (CI uses ../shared/data/images) must become
    # absolute before it can be written as a file:// URL.
    candidate = Path(mirror).expanduser().resolve() / sample.filename
    return candidate if candidate.is_file() else None


def _cache_dir() -> Path:
    """The Keras cache folder to use: :func:`helpers.paths.keras_home`, read now.

    Returns:
        ``$KERAS_HOME`` if set, else ``~/.keras`` (Keras's default), created
        if possible -- get_file silently falls back to ``/tmp/.keras`` for a
        folder that does not exist yet.
    """
    base = keras_home()
    # unwritable: get_file (and _cached_target) fall back to /tmp/.keras
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True)
    return base


def _download(sample: Sample, origin: str) -> Path:
    """Fetch ``origin`` into the Keras cache with a hash check and a time limit.

    Args:
        sample: the sample being fetched (file name and sha256).
        origin: the URL to fetch from (``https://`` or ``file://``).

    Returns:
        The path of the verified cached file.

    Raises:
        ValueError: the fetched file's sha256 is wrong (the file is deleted).
        Exception: whatever the download raised (Keras deletes partial files).
    """
    import keras  # imported here so that loading photos does not start TensorFlow

    # urllib has no timeout argument in get_file: a process-wide default is the
    # only way to make a dead network fail in seconds instead of minutes.
    # Keras's progress bar is silenced: for a 120 kB photo it is only noise in notebooks.
    with socket_timeout(DOWNLOAD_TIMEOUT), contextlib.redirect_stdout(io.StringIO()):
        try:
            path = keras.utils.get_file(
                sample.filename,
                origin,
                file_hash=sample.sha256,
                hash_algorithm="sha256",
                cache_subdir=CACHE_SUBDIR,
                cache_dir=str(_cache_dir()),
            )
        except ValueError:
            # get_file raises on a hash mismatch but leaves the bad file in the
            # cache; remove it so nobody mistakes it for the real photo.
            _cached_target(sample).unlink(missing_ok=True)
            raise
    return Path(path)


def _cached_target(sample: Sample) -> Path:
    """Where :func:`keras.utils.get_file` stores the sample.

    Args:
        sample: the sample.

    Returns:
        ``<cache>/helpers_samples/<filename>``, mirroring get_file's rules
        (including its fallback to ``/tmp/.keras`` for an unwritable cache).
    """
    base = _cache_dir()
    if not os.access(base, os.W_OK):
        base = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return base / CACHE_SUBDIR / sample.filename


def sample_path(name: str) -> Path:
    """Local path of a sample photo, downloading it on first use.

    Order of sources: the Keras cache (if its hash is right), then the offline
    mirror ``$GRADCAM_DATA_MIRROR`` (if it holds the file), then the pinned URL.
    Every source goes through the same sha256 check.

    Args:
        name: a key of :data:`SAMPLES`.

    Returns:
        The path of a verified copy of the file. For samples that ship inside
        a package (``"chelsea"``), the path inside that package.

    Raises:
        UnknownSampleError: the name is unknown.
        DataUnavailableError: the file could not be had or its hash is wrong;
            the message says what to do.
    """
    sample = _get_sample(name)
    if sample.url is None:
        return _bundled_path(sample)

    mirrored = _mirror_file(sample)
    origin = mirrored.as_uri() if mirrored is not None else sample.url
    try:
        return _download(sample, origin)
    except ValueError as exc:
        where = f"the mirror copy {mirrored}" if mirrored is not None else sample.url
        raise DataUnavailableError(
            f"the sample {name!r} from {where} does not have the expected sha256 "
            f"{sample.sha256}, so it was rejected ({exc}). Replace it with an exact "
            f"copy of {sample.url}."
        ) from exc
    except Exception as exc:  # get_file re-raises network failures as bare Exception
        mirror = os.environ.get(MIRROR_ENV)
        mirror_note = (
            f"{MIRROR_ENV}={mirror!r} does not hold {sample.filename!r}" if mirror else f"{MIRROR_ENV} is not set"
        )
        raise DataUnavailableError(
            f"could not download the sample {name!r} from {sample.url} ({exc}), and "
            f"{mirror_note}. Connect to the internet, or download the file elsewhere, "
            f"put it in a folder and set the environment variable {MIRROR_ENV} to that folder."
        ) from exc


def _bundled_path(sample: Sample) -> Path:
    """Path of a sample that ships inside scikit-image.

    Args:
        sample: a sample whose ``url`` is None.

    Returns:
        The file's path in the installed package.

    Raises:
        DataUnavailableError: the package's copy is missing.
    """
    import skimage.data

    path = Path(skimage.data.__file__).resolve().parent / sample.filename
    if not path.is_file():
        raise DataUnavailableError(
            f"scikit-image's copy of {sample.filename!r} is missing from {path.parent}; "
            "reinstall scikit-image (pip install --force-reinstall scikit-image)."
        )
    return path


def load_sample(name: str) -> np.ndarray:
    """Load a named sample photo.

    Args:
        name: a key of :data:`SAMPLES` (``"cat_dog"`` or ``"chelsea"``).

    Returns:
        The photo as an ``(H, W, 3)`` ``uint8`` RGB array.

    Raises:
        UnknownSampleError: the name is unknown.
        DataUnavailableError: the photo could not be had (see :func:`sample_path`).
    """
    sample = _get_sample(name)
    if sample.name == "chelsea":
        import skimage.data

        return np.ascontiguousarray(skimage.data.chelsea(), dtype=np.uint8)
    return load_image(sample_path(name))

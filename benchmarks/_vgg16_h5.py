"""Write a VGG16 weights file of the real size and layout (Keras's legacy HDF5), from random weights.

The ImageNet file cannot be downloaded here; the bytes of a ``weights=None``
model saved the same way are as many (553 MB), which is all a memory test needs.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write(path: Path) -> Path:
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from helpers.models.vgg16 import build_vgg16

    model = build_vgg16()
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))

"""Writing big arrays into Keras variables without doubling the memory they take."""

from __future__ import annotations

from typing import Callable

import numpy as np

#: The most bytes of new values held in NumPy at once while filling a variable.
CHUNK_BYTES = 128 * 2**20


def row_chunks(shape: tuple[int, ...], chunk_bytes: int | None = None, itemsize: int = 4):
    """``(start, stop)`` ranges over the first axis, each at most ``chunk_bytes`` (default ``CHUNK_BYTES``)."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    if not shape:
        yield 0, 1
        return
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    step = max(1, chunk_bytes // max(row_bytes, 1))
    for start in range(0, shape[0], step):
        yield start, min(shape[0], start + step)


def tensor_from_slices(shape, rows: Callable[[int, int], np.ndarray], dtype="float32"):
    """A tensor of ``shape`` built from ``rows(start, stop)`` (rows along the first axis).

    A whole NumPy array on its way into TensorFlow is copied twice (3x its
    size at peak: 1.2 GB for VGG16's fc1); slices of at most ``CHUNK_BYTES``
    joined by ``tf.concat`` cost 2x at peak, and the result can become a
    variable's buffer without another copy.
    """
    import tensorflow as tf

    shape = tuple(int(n) for n in shape)
    if not shape:
        return tf.constant(np.asarray(rows(0, 1), dtype).reshape(()))
    parts = [tf.constant(np.asarray(rows(a, b), dtype)) for a, b in row_chunks(shape)]
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)


def assign_in_slices(variable, rows: Callable[[int, int], np.ndarray]) -> None:
    """``variable.assign`` the array that ``rows(start, stop)`` gives slice by slice.

    A whole assignment, not slice assignment: TensorFlow puts a variable
    written by slices into copy-on-read mode, after which every forward pass
    copies it (411 MB more per pass for VGG16's fc1).
    """
    variable.assign(tensor_from_slices(variable.shape, rows, variable.dtype))


def read_in_slices(variable):
    """``(start, stop, values)`` for a variable, a slice at a time, without copying it whole."""
    value = variable.value.read_value() if hasattr(variable.value, "read_value") else variable.value
    shape = tuple(variable.shape)
    if not shape:
        yield 0, 1, np.asarray(value).reshape(1)
        return
    for start, stop in row_chunks(shape):
        yield start, stop, value[start:stop].numpy()

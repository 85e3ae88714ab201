"""Writing big arrays into Keras variables without doubling the memory they take."""

from __future__ import annotations

from collections.abc import Callable

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


def _aligned_empty(shape: tuple[int, ...], dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialised array whose data starts on an ``alignment``-byte boundary (TensorFlow needs 64)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    buffer = np.empty(count * dtype.itemsize + alignment, np.uint8)
    offset = -buffer.ctypes.data % alignment
    return buffer[offset : offset + count * dtype.itemsize].view(dtype).reshape(shape)


def tensor_from_slices(shape, rows: Callable[[int, int], np.ndarray], dtype="float32"):
    """A tensor of ``shape`` built from ``rows(start, stop)`` (rows along the first axis).

    The rows are written into one aligned NumPy buffer, which TensorFlow then
    takes over through DLPack without copying. ``tf.constant`` on a whole
    array copies it twice (3x its size at peak: 1.2 GB for VGG16's fc1);
    this costs the array once, and a variable assigned from the tensor keeps
    its buffer.
    """
    import tensorflow as tf

    shape = tuple(int(n) for n in shape)
    values = _aligned_empty(shape, dtype)
    if not shape:
        values[...] = np.asarray(rows(0, 1), dtype).reshape(())
        return tf.constant(values)
    for start, stop in row_chunks(shape):
        values[start:stop] = rows(start, stop)
    return tf.experimental.dlpack.from_dlpack(values.__dlpack__())


def assign_from_slices(variable, rows: Callable[[int, int], np.ndarray]) -> None:
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

"""Writing big arrays into Keras variables without doubling the memory they take."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The most bytes of new values held in NumPy at once while filling a variable.
CHUNK_BYTES = 128 * 2**20
#: Weights larger than this are backed up by :class:`WeightBackup` to a temporary file, not kept
#: in memory (only VGG16 has such layers: fc1 is 411 MB).
SPILL_BYTES = 32 * 2**20


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


@dataclass(frozen=True)
class SpilledWeight:
    """A large weight's values, kept in a raw file instead of memory, with their mean and standard deviation."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    mean: float
    std: float

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (along the first axis), read from the file."""
        row = int(np.prod(self.shape[1:], dtype=np.int64))
        values = np.fromfile(
            self.path, dtype=self.dtype, count=(stop - start) * row, offset=start * row * self.dtype.itemsize
        )
        return values.reshape((stop - start, *self.shape[1:]))


class WeightBackup:
    """Copies of variables' values, to be written back later: small ones in memory, large ones on disk.

    Example::

        backup = WeightBackup()
        try:
            for variable in layer.weights:
                backup.save(variable)
                variable.assign(...)            # change the weights
        finally:
            backup.restore_all()                # bit for bit as they were

    A weight of :data:`SPILL_BYTES` or more is written, slice by slice, to a
    raw file in a temporary folder (created on first need, deleted by
    :meth:`restore_all` or :meth:`discard`), so backing up VGG16's fc1 costs
    disk, not 411 MB of memory; it is read back slice by slice too.
    """

    def __init__(self, spill_bytes: int | None = None, prefix: str = "helpers-weights-"):
        """``spill_bytes``: the size from which weights go to disk (default :data:`SPILL_BYTES`)."""
        self.spill_bytes = spill_bytes
        self.prefix = prefix
        self._saved: list[tuple[object, np.ndarray | SpilledWeight]] = []
        self._folder: tempfile.TemporaryDirectory | None = None

    def save(self, variable) -> np.ndarray | SpilledWeight:
        """Back up ``variable``'s current values and return the copy.

        Returns:
            A NumPy array (small weights) or a :class:`SpilledWeight` (large
            ones; its ``mean`` and ``std`` are computed while it is written).
            Either can be read, but must not be changed.
        """
        shape, dtype = tuple(variable.shape), np.dtype(variable.dtype)
        size = int(np.prod(shape, dtype=np.int64))
        limit = SPILL_BYTES if self.spill_bytes is None else self.spill_bytes
        if size * dtype.itemsize < limit:
            copy = np.array(variable.numpy(), copy=True)
        else:
            copy = self._spill(variable, shape, dtype, size)
        self._saved.append((variable, copy))
        return copy

    def _spill(self, variable, shape, dtype, size) -> SpilledWeight:
        # Plain writes, slice by slice: a memory map would count its pages in the resident memory.
        path, total, squares = self._spill_folder() / f"{len(self._saved)}.raw", 0.0, 0.0
        with open(path, "wb") as f:
            for _, _, part in read_in_slices(variable):
                part = np.ascontiguousarray(part, dtype)
                part.tofile(f)
                total += float(part.sum(dtype=np.float64))
                squares += float(np.square(part, dtype=np.float64).sum())
        mean = total / size
        return SpilledWeight(path, shape, dtype, mean, float(np.sqrt(max(squares / size - mean * mean, 0.0))))

    def _spill_folder(self) -> Path:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix=self.prefix)
        return Path(self._folder.name)

    @property
    def folder(self) -> Path | None:
        """The temporary folder of the spilled weights (None until a weight is spilled, and after cleaning up)."""
        return None if self._folder is None else Path(self._folder.name)

    @property
    def nbytes(self) -> int:
        """Memory held by the copies (the spilled ones live on disk)."""
        return sum(copy.nbytes for _, copy in self._saved if isinstance(copy, np.ndarray))

    def __len__(self) -> int:
        return len(self._saved)

    def restore_all(self) -> None:
        """Write every saved copy back (last saved first), then forget the copies and delete the folder.

        A variable saved twice gets its first copy: the values before any change.
        """
        try:
            while self._saved:
                variable, copy = self._saved[-1]
                if isinstance(copy, SpilledWeight):
                    assign_from_slices(variable, copy.rows)
                else:
                    variable.assign(copy)
                self._saved.pop()
        finally:
            if not self._saved:
                self.discard()

    def discard(self) -> None:
        """Forget the copies without writing them back, and delete the temporary folder."""
        self._saved.clear()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

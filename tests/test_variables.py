"""Filling big variables slice by slice: right values, usable buffers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.models import variables


@pytest.mark.parametrize("shape", [(), (5,), (7, 3), (9, 2, 3, 4)])
def test_tensor_from_slices_equals_the_whole_array(monkeypatch, shape):
    monkeypatch.setattr(variables, "CHUNK_BYTES", 24)  # several slices even for tiny arrays
    whole = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    rows = (lambda a, b: whole[a:b]) if shape else (lambda a, b: whole)
    tensor = variables.tensor_from_slices(shape, rows)
    np.testing.assert_array_equal(np.asarray(tensor), whole)


def test_a_variable_assigned_from_slices_works_in_every_op(monkeypatch):
    """TensorFlow's kernels need 64-byte-aligned buffers; the DLPack buffer must be one."""
    monkeypatch.setattr(variables, "CHUNK_BYTES", 1000)
    layer = keras.layers.Dense(33)
    layer.build((None, 257))
    kernel = np.random.default_rng(0).normal(size=(257, 33)).astype(np.float32)
    variables.assign_from_slices(layer.kernel, lambda a, b: kernel[a:b])
    x = np.random.default_rng(1).normal(size=(4, 257)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), x @ kernel + np.asarray(layer.bias), rtol=1e-5, atol=1e-5)
    read = np.concatenate([part for _, _, part in variables.read_in_slices(layer.kernel)])
    np.testing.assert_array_equal(read, kernel)


def test_aligned_buffers_start_on_64_bytes():
    for size in (1, 3, 17, 1000):
        assert variables._aligned_empty((size,), np.float32).ctypes.data % 64 == 0

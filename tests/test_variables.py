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


def _dense(units: int, inputs: int, seed: int):
    keras.utils.set_random_seed(seed)
    layer = keras.layers.Dense(units)
    layer.build((None, inputs))
    return layer


@pytest.mark.parametrize("spill_bytes", [None, 100])  # all in memory; the kernel spilled to disk
def test_weight_backup_restores_bit_for_bit_and_cleans_up(monkeypatch, spill_bytes):
    monkeypatch.setattr(variables, "CHUNK_BYTES", 64)  # spilled weights go and come back in several slices
    layer = _dense(7, 11, seed=0)
    before = [np.array(v.numpy()) for v in layer.weights]
    backup = variables.WeightBackup(spill_bytes=spill_bytes)
    copies = [backup.save(v) for v in layer.weights]
    assert len(backup) == 2
    if spill_bytes:
        kernel = copies[0]
        assert isinstance(kernel, variables.SpilledWeight)
        assert list(backup.folder.glob("*.raw")) and backup.nbytes == before[1].nbytes  # the bias stays in memory
        assert kernel.mean == pytest.approx(before[0].mean(), abs=1e-6)
        assert kernel.std == pytest.approx(before[0].std(), rel=1e-5)
        np.testing.assert_array_equal(kernel.rows(2, 5), before[0][2:5])
    else:
        assert backup.folder is None and backup.nbytes == sum(b.nbytes for b in before)
    folder = backup.folder
    for variable in layer.weights:
        variable.assign(np.full(variable.shape, 3.0, np.float32))
    backup.restore_all()
    for variable, original in zip(layer.weights, before):
        np.testing.assert_array_equal(variable.numpy(), original)
    assert len(backup) == 0 and backup.nbytes == 0 and backup.folder is None
    assert folder is None or not folder.exists()


def test_a_weight_saved_twice_gets_its_first_values_back():
    layer = _dense(3, 4, seed=1)
    first = np.array(layer.kernel.numpy())
    backup = variables.WeightBackup()
    backup.save(layer.kernel)
    layer.kernel.assign(first + 1)
    backup.save(layer.kernel)
    layer.kernel.assign(first + 2)
    backup.restore_all()
    np.testing.assert_array_equal(layer.kernel.numpy(), first)


def test_discard_forgets_without_restoring(monkeypatch):
    monkeypatch.setattr(variables, "SPILL_BYTES", 1)  # the default limit is read when saving
    layer = _dense(3, 4, seed=2)
    backup = variables.WeightBackup()
    assert isinstance(backup.save(layer.kernel), variables.SpilledWeight)
    folder = backup.folder
    layer.kernel.assign(np.zeros((4, 3), np.float32))
    backup.discard()
    backup.restore_all()  # nothing left to restore
    assert not layer.kernel.numpy().any() and not folder.exists()

"""Pass 2: the restricted Unpickler and the globals a weights file may name.

``find_class`` hands out only an ``OrderedDict`` subclass (whose
``__setstate__`` accepts ``_metadata`` and nothing else), a NumPy stand-in for
``_rebuild_tensor_v2`` and immutable marker classes for the storage types
(:mod:`.records`); ``persistent_load`` is allowed in the main pickle only.
"""

from __future__ import annotations

import collections
import pickle

from ...errors import UnsafePickleError
from .limits import _REFUSAL_HINT
from .records import _STORAGE_DTYPES, _STORAGE_TYPES, _Rebuilder, _storage_ref

_ODICT = "collections.OrderedDict"
_REBUILD = "torch._utils._rebuild_tensor_v2"
_ALLOWED_GLOBALS = frozenset({_ODICT, _REBUILD} | {f"torch.{name}" for name in _STORAGE_DTYPES})


class _StateDict(collections.OrderedDict):
    """``OrderedDict`` as the file may build it: ``BUILD`` may only set ``_metadata``, which we drop."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise UnsafePickleError(f"refused BUILD state other than _metadata: {_REFUSAL_HINT}")


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can build only an OrderedDict of tensor recipes."""

    def __init__(self, file, *, allow_storages: bool):
        super().__init__(file)
        # Only the main pickle may reference storages.
        self._allow_storages = allow_storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return _StateDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Rebuilder()
        if module == "torch" and name in _STORAGE_TYPES:
            return _STORAGE_TYPES[name]
        raise UnsafePickleError(f"refused to load global '{module}.{name}': {_REFUSAL_HINT}")

    def persistent_load(self, pid):
        if not self._allow_storages:
            raise UnsafePickleError(f"refused a persistent id outside the tensor dict: {_REFUSAL_HINT}")
        return _storage_ref(pid)

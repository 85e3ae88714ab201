"""Every use of Keras's private internals, fenced in one place.

Two things in this package need more than Keras's public API:

* **Building a model without allocating its weights** (the lean VGG16 loader):
  Keras's stateless scope defers variable initialisation (the mechanism it
  uses for lazy models); each variable keeps its initialiser in
  ``Variable._initializer`` until ``Variable._deferred_initialize()`` runs it,
  and waits in the ``uninitialized_variables`` list of Keras's global state.
  Replacing the initialiser lets VGG16's 138 M weights be created straight
  from the file, slice by slice: peak memory about 1.1 GB instead of 2.3 GB.
* **Walking a functional model's graph** with a function applied to every
  operation (``Functional._run_through_graph``, the walk Keras itself does
  in ``Functional.call``): how :func:`helpers.graph.feature_and_logits_model`
  inlines nested models.

Both were written against the Keras pinned in ``pyproject.toml`` (3.15). The
flags :data:`LEAN_BUILD_AVAILABLE` and :data:`GRAPH_WALK_AVAILABLE` say
whether the installed Keras still has them; the callers fall back to public
APIs when they do not (see :func:`helpers.models.vgg16.build_vgg16` and
:func:`helpers.graph.feature_and_logits_model`). Nothing else in
``helpers`` may touch ``keras.src`` or an underscored Keras attribute (a
test checks).

This is a bottom-level module: it imports Keras and :mod:`helpers.errors`
only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import keras

from .errors import KerasVersionError as KerasVersionError  # defined with the other errors; re-exported here

#: The Keras versions these internals were written for (as pinned in pyproject.toml).
PINNED_KERAS = "keras>=3.15,<3.16"
KERAS_VERSION = keras.__version__


# A warning, not an error, so it stays here rather than in helpers.errors (which holds the errors,
# KerasVersionError among them).
class KerasInternalsWarning(UserWarning):
    """The installed Keras lacks an internal this package uses; a slower or bigger public path is taken."""


def _global_state():
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    if not all(hasattr(global_state, f) for f in ("get_global_attribute", "set_global_attribute")):
        return None
    return global_state


def _missing_lean_build_internals() -> tuple[str, ...]:
    """What the lean build needs and the installed Keras lacks (empty: it has everything)."""
    missing = []
    scope = getattr(keras, "StatelessScope", None)
    if scope is None or "initialize_variables" not in inspect.signature(scope).parameters:
        missing.append("keras.StatelessScope(initialize_variables=False)")
    if _global_state() is None:
        missing.append("keras.src.backend.common.global_state")
    if not callable(getattr(keras.Variable, "_deferred_initialize", None)):
        missing.append("Variable._deferred_initialize()")
    return tuple(missing)


def _functional_class():
    try:
        from keras.src.models.functional import Functional
    except ImportError:
        return None
    return Functional


def _graph_walk_available() -> bool:
    walk = getattr(_functional_class(), "_run_through_graph", None)
    return callable(walk) and "operation_fn" in inspect.signature(walk).parameters


#: The internals of the lean build that the installed Keras lacks (empty when it has them all).
MISSING_LEAN_BUILD_INTERNALS: tuple[str, ...] = _missing_lean_build_internals()
#: Whether models can be built without allocating their weights (:func:`build_without_allocating`).
LEAN_BUILD_AVAILABLE: bool = not MISSING_LEAN_BUILD_INTERNALS
#: Whether functional graphs can be walked with a function per operation (:func:`run_through_graph`).
GRAPH_WALK_AVAILABLE: bool = _graph_walk_available()


def missing(what: str) -> str:
    """A sentence naming what the installed Keras lacks, for warnings and errors."""
    return f"Keras {KERAS_VERSION} lacks {what}, a Keras internal that helpers uses (written for {PINNED_KERAS})"


def lean_build_missing() -> str:
    """:func:`missing` for the lean build: the internals it needs that the installed Keras lacks."""
    return missing(", ".join(MISSING_LEAN_BUILD_INTERNALS) or "deferred variable initialisation")


def graph_walk_missing() -> str:
    """:func:`missing` for the graph walk."""
    return missing("Functional._run_through_graph")


class LeanBuildUnavailable(KerasVersionError):
    """:func:`build_without_allocating` found the installed Keras's internals different from the pinned ones."""


def build_without_allocating(build_fn: Callable[[], keras.Model]) -> keras.Model:
    """``build_fn()`` with every variable created but holding no values yet.

    Fill each variable afterwards with :func:`initialize_deferred`; a variable
    left empty cannot be used.

    Raises:
        LeanBuildUnavailable: the installed Keras lacks the internals (check
            :data:`LEAN_BUILD_AVAILABLE` first), or its variables did not wait
            for their values as Keras 3.15's do.
    """
    if not LEAN_BUILD_AVAILABLE:
        raise LeanBuildUnavailable(lean_build_missing() + ".")
    global_state = _global_state()
    with keras.StatelessScope(initialize_variables=False):
        model = build_fn()
    # Keras would initialise the variables, with its own random values, on the next
    # stateless scope's exit: take ours off its list.
    ours = {id(v) for v in model.weights}
    pending = global_state.get_global_attribute("uninitialized_variables", [])
    global_state.set_global_attribute("uninitialized_variables", [v for v in pending if id(v) not in ours])
    if not all(getattr(v, "_initializer", None) is not None for v in model.weights):
        raise LeanBuildUnavailable(missing("deferred variables (Variable._initializer)") + ".")
    return model


def initialize_deferred(variable, initializer: Callable) -> None:
    """Give a variable of a model from :func:`build_without_allocating` its values.

    Args:
        variable: one of the model's variables, still empty.
        initializer: ``initializer(shape, dtype)`` -> the values (a tensor or array).
    """
    variable._initializer = initializer
    variable._deferred_initialize()


def walks_graph(model) -> bool:
    """Whether :func:`run_through_graph` can walk ``model`` (a functional model, with the internal present)."""
    return GRAPH_WALK_AVAILABLE and callable(getattr(model, "_run_through_graph", None))


def run_through_graph(model, inputs, operation_fn: Callable):
    """Run a functional ``model``'s graph on ``inputs``, each operation ``op`` called as ``operation_fn(op)(*args, **kwargs)``.

    The same walk Keras does in ``Functional.call``; ``operation_fn`` may
    replace an operation by anything taking the same arguments (a nested
    model by its own walk, for instance).

    Raises:
        KerasVersionError: the model cannot be walked (see :func:`walks_graph`).
    """
    if not walks_graph(model):
        raise KerasVersionError(
            f"cannot walk the graph of {getattr(model, 'name', model)!r}: "
            + (graph_walk_missing() if not GRAPH_WALK_AVAILABLE else "it is not a functional model")
            + "."
        )
    return model._run_through_graph(inputs, operation_fn=operation_fn)

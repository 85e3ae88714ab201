"""Exercises with instant feedback: check a function you wrote against ``helpers``.

At the end of notebooks 02-05 and 09 (07 and 08: checkers ready, cells to come) you write one
small function, then check it::

    from helpers.exercises import check_channel_weights

    def my_channel_weights(gradients):
        ...                                   # your code

    check_channel_weights(my_channel_weights)

The check runs your function on a few small hand-made inputs and on real inputs
from EfficientNet-Lite0 (the offline model, so the verdict is the same on every
machine), compares each result with the reference implementation in
``helpers``, and prints a short verdict: which cases are right; for the first
wrong one, the inputs, the expected values and yours; what the mistake
probably is; a hint. It never shows solution code. It also returns a
:class:`CheckResult` (``result.passed``, ``result.message``, ``result.notes``).

The exercises (``EXERCISES``):

==============================  ========  =====================================================
name                            notebook  your function
==============================  ========  =====================================================
``channel_weights``             02        ``(gradients (h, w, K)) -> alpha (K,)``
``grad_cam_map``                02        ``(activations, gradients) -> (alpha, L)``
``guided_relu_gradient``        03        ``(x, upstream, max_value=None) -> gradient into x``
``guided_grad_cam``             04        ``(guided (H, W, 3), cam (H, W)) -> (H, W, 3)``
``class_for_region``            05        ``(explanations, box) -> class index``
``deletion_auc``                07        ``(fractions, scores) -> area under the curve``
``grad_cam_plus_plus_weights``  08        ``(activations, gradients) -> w (K,)``
``marker_share``                09        ``(maps (n, H, W), box) -> mean share in the box``
==============================  ========  =====================================================

Robustness: your function runs in a worker thread with a time limit (5 s per
case by default). If it raises, the verdict names the exception and the line,
without a traceback; wrong types, shapes, dtypes, NaN and infinity are
reported as such. A function that does not return in time is interrupted (an
exception is raised inside the thread, which stops pure-Python loops); code
stuck inside one long C call (a huge NumPy operation, ``time.sleep``) cannot be
interrupted by any means short of killing the kernel, so it keeps running in
the background until it returns; the verdict says so, and restarting the
kernel frees it. (A subprocess could be killed, but forking a kernel that has
TensorFlow loaded is unsafe, and these exercises are NumPy one-liners.)
Your function gets copies of the inputs, so changing them in place cannot
spoil the check; the verdict notes it if you do.

The package, by concern, then one module per notebook:

* :mod:`.results` -- :class:`Case`, ``CaseResult``, :class:`CheckResult`.
* :mod:`.sandbox` -- running the learner's function: thread, time limit, copies.
* :mod:`.judging` -- comparing with the reference, showing values, known mistakes.
* :mod:`.real_inputs` -- the EfficientNet-Lite0 inputs, computed once and cached.
* :mod:`.verdict` -- :func:`check`, the printed verdict, the :data:`EXERCISES` registry.
* ``nb02_grad_cam``, ``nb03_guided_backprop``, ``nb04_guided_grad_cam``,
  ``nb05_class_discrimination``, ``nb07_faithfulness_and_localization``,
  ``nb08_layers_and_other_cams``, ``nb09_your_own_model`` -- each notebook's
  exercises and their ``check_*`` functions.
"""

from __future__ import annotations

# The notebooks' modules register their exercises in EXERCISES when imported: in notebook order.
from .nb02_grad_cam import check_channel_weights, check_grad_cam_map
from .nb03_guided_backprop import check_guided_relu_gradient
from .nb04_guided_grad_cam import check_guided_grad_cam
from .nb05_class_discrimination import check_class_for_region
from .nb07_faithfulness_and_localization import check_deletion_auc
from .nb08_layers_and_other_cams import check_grad_cam_plus_plus_weights
from .nb09_your_own_model import check_marker_share
from .real_inputs import _cat_dog_top5 as _cat_dog_top5  # re-exported for the tests
from .real_inputs import _real_cache as _real_cache
from .results import Case, CheckResult
from .results import CaseResult as CaseResult
from .verdict import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .verdict import EXERCISES, check

__all__ = [
    "EXERCISES",
    "Case",
    "CheckResult",
    "check",
    "check_channel_weights",
    "check_class_for_region",
    "check_deletion_auc",
    "check_grad_cam_map",
    "check_grad_cam_plus_plus_weights",
    "check_guided_grad_cam",
    "check_guided_relu_gradient",
    "check_marker_share",
]

"""Import TensorFlow without the start-up lines its C++ core writes to stderr.

TensorFlow's C++ start-up logs are noise for learners (and would land in notebook outputs):
``TF_CPP_MIN_LOG_LEVEL=3`` is set unless the user chose a level. oneDNN stays as TensorFlow
sets it (on for x86): it makes guided backprop about 1.6x faster; its re-ordered float sums
change the last printed digits, which the notebook tests tolerate (``conftest.py``).

A few lines (oneDNN's notice, "All log messages before absl::InitializeLog() ...") are written
before ``TF_CPP_MIN_LOG_LEVEL`` applies; a learner would see them in red under the first cell.
So, when logs are off, the import runs with file descriptor 2 sent to ``/dev/null``. Only the
import is silenced: an error it raises still reaches Python.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        return
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None under pythonw and some embedded interpreters
            stream.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()


class _NoRetracingNotice:
    """Drops TensorFlow's "N out of the last M calls ... triggered tf.function retracing" notice.

    The explanation engine keeps one traced function per (model, layer, mode, number of
    classes), on purpose and cached (``helpers/explain/gradients.py``); TensorFlow counts the
    first calls of all of them as retracings of one function because they share their code,
    and would warn a learner who merely tried a few layers. Every other TensorFlow message passes.
    """

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _drop_retracing_notice() -> None:
    import logging

    if "tensorflow" in sys.modules:
        logging.getLogger("tensorflow").addFilter(_NoRetracingNotice())


_drop_retracing_notice()

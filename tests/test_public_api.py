"""The public API (``helpers.__all__``): every function is typed, every error is a HelpersError."""

from __future__ import annotations

import inspect

import pytest

import helpers

FUNCTIONS = [name for name in helpers.__all__ if inspect.isfunction(getattr(helpers, name))]


def test_the_public_api_has_the_methods_and_loaders():
    assert {
        "grad_cam",
        "guided_backprop",
        "guided_grad_cam",
        "counterfactual",
        "saliency",
        "explain_classes",
        "load_model",
        "load_sample",
        "load_image",
        "wrap_keras_model",
    } <= set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_public_function_has_type_hints(name):
    signature = inspect.signature(getattr(helpers, name))
    untyped = [
        p.name
        for p in signature.parameters.values()
        if p.annotation is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert not untyped, f"{name}: parameters without a type hint: {untyped}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name} has no return type"


def test_every_public_error_is_a_helpers_error():
    errors = [getattr(helpers, n) for n in helpers.__all__ if n.endswith("Error")]
    assert len(errors) >= 10
    assert all(issubclass(e, helpers.HelpersError) for e in errors)


def test_importing_helpers_prints_nothing():
    # TensorFlow's C++ start-up lines (oneDNN's notice, absl's "All log messages before ...") would
    # appear in red under a learner's first cell.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "GRADCAM_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import helpers, tensorflow"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", result.stderr

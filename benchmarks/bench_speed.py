"""Speed of the explanations relative to a plain forward pass, measured in one run.

Targets (issue "Explanation engine"), 224x224, batch 1, traced functions:
  Grad-CAM, one class          <= 1.5 x forward pass
  Guided Grad-CAM, one class   <= 2.5 x forward pass (issue "Portable, fast and lean")
  Grad-CAM, top-5 classes      <= 2.0 x one Grad-CAM map

The forward pass is ``tf.function(model)`` on the preprocessed input. The
explanations are timed end to end as a learner calls them (resize,
preprocess, pass, NumPy maps). Medians of interleaved repeats, so that
machine noise hits every variant alike. VGG16 uses random weights (speed
does not depend on their values).

Then every method of the registry (``helpers.explain.REGISTRY``), called alone as
``method(classifier, photo, target)``, is timed once more against the forward pass
(informative, no target): a new method shows up here by being registered.

    python benchmarks/bench_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time

import numpy as np

import helpers  # noqa: F401  (quiet TensorFlow before it loads)

# isort: split
import tensorflow as tf

from helpers import explain_classes, load_model, wrap_keras_model
from helpers.explain import REGISTRY, model_input
from helpers.models import vgg16

TARGETS = {"gradcam / forward": 1.5, "guided_gradcam / forward": 2.5, "top5 gradcam / gradcam": 2.0}


def classifiers():
    yield load_model("efficientnet_lite0")
    yield wrap_keras_model(
        vgg16.build_vgg16(),
        preprocess=vgg16.preprocess_vgg16,
        class_names="imagenet",
        input_is_bgr=True,
        name="vgg16 (random weights)",
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(classifier, repeats: int) -> dict[str, float]:
    photo = np.random.default_rng(0).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    _, x = model_input(classifier, photo)
    forward = tf.function(classifier.model)
    x_tensor = tf.constant(x)
    variants = {
        "forward": lambda: forward(x_tensor).numpy(),
        "gradcam": lambda: explain_classes(classifier, photo, [281], guided=False),
        "guided_gradcam": lambda: explain_classes(classifier, photo, [281], guided=True),
        "top5 gradcam": lambda: explain_classes(classifier, photo, top_k=5, guided=False),
    }
    for fn in variants.values():  # trace and warm up
        fn(), fn()
    samples = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            samples[name].append(timed(fn))
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_registry(classifier, forward_seconds: float) -> None:
    """Each registered method alone, as ``method(classifier, photo, target)``: cost in forward passes."""
    photo = np.random.default_rng(1).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    for method in REGISTRY.values():
        options = {"progress": False} if "progress" in inspect.signature(method.function).parameters else {}

        def call(method=method, options=options):
            return method.function(classifier, photo, 281, **options)

        call()  # trace and warm up
        seconds = statistics.median(timed(call) for _ in range(3))
        print(f"  {method.title:<26} {seconds / forward_seconds:7.1f} x forward  ({method.cost})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    failed = False
    for classifier in classifiers():
        t = bench(classifier, args.repeats)
        ratios = {
            "gradcam / forward": t["gradcam"] / t["forward"],
            "guided_gradcam / forward": t["guided_gradcam"] / t["forward"],
            "top5 gradcam / gradcam": t["top5 gradcam"] / t["gradcam"],
        }
        print(f"{classifier.name}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in t.items()))
        for name, ratio in ratios.items():
            ok = ratio <= TARGETS[name]
            failed |= not ok
            print(f"  {name:<26} {ratio:5.2f}  (target <= {TARGETS[name]})  {'PASS' if ok else 'FAIL'}")
        print(f"{classifier.name}, every registered method alone:")
        bench_registry(classifier, t["forward"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

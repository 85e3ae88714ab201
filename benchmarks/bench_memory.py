"""Peak memory of VGG16 + Grad-CAM, guided backprop and Guided Grad-CAM (Binder allows 2 GB).

Each variant runs in its own process; peak RSS is the kernel's own account
(``getrusage`` ru_maxrss, the high-water mark of the resident set). VGG16's
ImageNet file cannot be downloaded here, so a file of the same size and
layout is written from ``weights=None`` (the bytes are as many).

    python benchmarks/bench_memory.py [--keep FILE.h5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT_MB = 2000.0

RUN = r"""
import json, resource, sys
import numpy as np
import helpers
from helpers import grad_cam, guided_backprop, guided_grad_cam, wrap_keras_model
from helpers.models import vgg16

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

variant, path = sys.argv[1], sys.argv[2]
steps = {"import": peak_mb()}
if variant == "naive":
    import keras
    model = keras.applications.VGG16(weights=path, classifier_activation=None)
else:
    model = vgg16.build_vgg16(path)
steps["load"] = peak_mb()
classifier = wrap_keras_model(model, preprocess=vgg16.preprocess_vgg16, class_names="imagenet", input_is_bgr=True)
photo = np.random.default_rng(0).uniform(0, 255, (480, 640, 3))
grad_cam(classifier, photo, 243); steps["grad_cam"] = peak_mb()
guided_backprop(classifier, photo, 243); steps["guided_backprop"] = peak_mb()
guided_grad_cam(classifier, photo, 243); steps["guided_grad_cam"] = peak_mb()
print(json.dumps(steps))
"""


def measure(variant: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, variant, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="write/reuse the simulated weights file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "vgg16_simulated.h5"
        if not path.exists():
            subprocess.run([sys.executable, str(HERE / "_vgg16_h5.py"), str(path)], check=True, capture_output=True)
        print(f"simulated VGG16 weights: {path.stat().st_size / 1e6:.0f} MB")
        results = {variant: measure(variant, path) for variant in ("naive", "lean")}
    print(f"{'peak RSS (MB)':<18}" + "".join(f"{k:>17}" for k in results["lean"]))
    for variant, steps in results.items():
        label = "keras load_weights" if variant == "naive" else "helpers (lean)"
        print(f"{label:<18}" + "".join(f"{v:17.0f}" for v in steps.values()))
    naive, lean = results["naive"]["guided_grad_cam"], results["lean"]["guided_grad_cam"]
    verdict = "PASS" if lean <= LIMIT_MB else "FAIL"
    print(f"peak lean / naive = {lean / naive:.2f}; lean peak {lean:.0f} MB vs limit {LIMIT_MB:.0f} MB: {verdict}")
    return 0 if lean <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())

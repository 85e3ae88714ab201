"""Cold and warm ``load_model`` times, each in a fresh process (TensorFlow's import excluded).

EfficientNet-Lite0: cold = read the PyTorch file and convert (empty cache),
warm = from the converted Keras weights file. VGG16: warm = from a weights
file of the real size (``GRADCAM_VGG16_WEIGHTS``); its cold time is the
553 MB download, which this offline machine cannot measure.

    python benchmarks/bench_load.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = r"""
import time, helpers, tensorflow
from helpers import load_model
start = time.perf_counter()
load_model({name!r})
print(time.perf_counter() - start)
"""


def timed(name: str, env: dict) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RUN.format(name=name)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cache = {"GRADCAM_CACHE_DIR": str(Path(tmp) / "cache")}
        cold = timed("efficientnet_lite0", cache)
        warm = timed("efficientnet_lite0", cache)
        print(f"efficientnet_lite0  cold {cold:5.2f} s   warm {warm:5.2f} s")
        weights = Path(tmp) / "vgg16.h5"
        subprocess.run([sys.executable, str(HERE / "_vgg16_h5.py"), str(weights)], check=True, capture_output=True)
        warm = timed("vgg16", {"GRADCAM_VGG16_WEIGHTS": str(weights)})
        print(f"vgg16               cold (553 MB download: not measurable offline)   warm {warm:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

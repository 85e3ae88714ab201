"""Peak memory of each notebook run with VGG16, each in its own kernel (Binder allows 2 GB).

VGG16's ImageNet weights cannot be downloaded here; a weights file of the real
size and layout (written from ``weights=None``) stands in for them through
``GRADCAM_VGG16_WEIGHTS``. Each notebook runs top to bottom in a fresh kernel
with ``GRADCAM_MODEL=vgg16``; a last cell appended to the run reads the
kernel's own high-water mark of resident memory (``getrusage`` ru_maxrss).
The pictures are meaningless with random weights; the memory is not.

    python benchmarks/bench_notebook_memory.py [--keep FILE.h5] [notebooks ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent / "notebooks"
LIMIT_MB = 2000.0
PROBE = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"


def peak_mb(notebook: Path, weights: Path) -> tuple[float, float]:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    os.environ.update(GRADCAM_MODEL="vgg16", GRADCAM_VGG16_WEIGHTS=str(weights))
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    seconds = time.perf_counter() - start
    return float(nb.cells[-1].outputs[0]["text"].strip()), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="write/reuse the simulated weights file here")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    notebooks = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.keep or Path(tmp) / "vgg16_simulated.h5"
        if not weights.exists():
            subprocess.run([sys.executable, str(HERE / "_vgg16_h5.py"), str(weights)], check=True, capture_output=True)
        worst = 0.0
        for notebook in notebooks:
            peak, seconds = peak_mb(notebook, weights)
            worst = max(worst, peak)
            verdict = "PASS" if peak <= LIMIT_MB else f"FAIL (+{peak - LIMIT_MB:.0f} MB)"
            print(f"{notebook.name:<40} peak {peak:6.0f} MB  ({seconds:5.1f} s)  {verdict}", flush=True)
    print(f"worst notebook peak {worst:.0f} MB vs limit {LIMIT_MB:.0f} MB: {'PASS' if worst <= LIMIT_MB else 'FAIL'}")
    return 0 if worst <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())

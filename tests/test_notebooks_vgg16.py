"""Every notebook runs under VGG16, the model ``"auto"`` picks online (Binder, laptops).

The stored outputs come from EfficientNet-Lite0 (offline), so nbval never sees VGG16. Here each
notebook is executed with a VGG16 weights file of the real size and layout (553 MB, random
weights: the ImageNet file cannot be downloaded in CI). Random weights make the classes
meaningless, which is the point: the notebooks may not assume what any model finds. Each must
run clean (no error, nothing on stderr, no warning) and its printed findings, computed from the
numbers, must agree with what is known about VGG16's architecture (flatten + dense head: Grad-CAM
is not CAM at block5_conv3).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import REPO

NOTEBOOK_DIR = REPO / "notebooks"
PRETRAINED = sorted(
    p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb") if "load_model(MODEL)" in p.read_text(encoding="utf-8")
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vgg16_weights(tmp_path_factory):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from helpers.models.vgg16 import build_vgg16

    path = tmp_path_factory.mktemp("vgg16") / "vgg16_random.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, build_vgg16())
    return path


def execute(path: Path, env: dict) -> dict:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    old = dict(os.environ)
    os.environ.update(env)
    os.environ.pop("GRADCAM_MODEL", None)  # "auto" must choose, as it does for a learner
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return notebook


def texts(notebook) -> list[tuple[int, str, str]]:
    """(cell number, kind, text) of every output."""
    found = []
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                found.append((number, output.name, output.text))
            elif output.output_type == "error":
                found.append((number, "error", f"{output.ename}: {output.evalue}"))
            else:
                for key, value in output.get("data", {}).items():
                    if key.startswith("text/"):
                        found.append((number, key, value))
    return found


def test_every_pretrained_notebook_is_found():
    assert [p.name[:2] for p in PRETRAINED] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", PRETRAINED, ids=lambda p: p.name)
def test_notebook_runs_clean_under_vgg16(path, vgg16_weights, tmp_path):
    notebook = execute(
        path,
        {"GRADCAM_VGG16_WEIGHTS": str(vgg16_weights), "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"},
    )
    outputs = texts(notebook)
    assert not [o for o in outputs if o[1] in ("error", "stderr")], [o for o in outputs if o[1] in ("error", "stderr")]
    assert not [o for o in outputs if re.search(r"warning", o[2], re.IGNORECASE)]
    everything = "\n".join(text for _, _, text in outputs)
    assert "VGG16" in everything, "the notebook did not run VGG16"
    (tmp_path / "executed.json").write_text(json.dumps(outputs))  # kept for a failing run's inspection
    check_claims(path.name, everything)


def check_claims(name: str, printed: str) -> None:
    """Printed findings that VGG16's architecture decides, whatever its weights."""
    if name.startswith("02"):
        # flatten + dense head: the gradient at block5_conv3 varies over positions, so alpha depends on the photo
        assert "layer block5_conv3" in printed
        assert "-> alpha depends on the photo here" in printed, printed
        assert "Grad-CAM is CAM" not in printed and "does not depend on the photo" not in printed, printed

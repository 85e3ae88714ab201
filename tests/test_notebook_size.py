"""The committed notebooks stay light: quick to clone, to open and to diff.

The figures make the weight. ``helpers.viz.compact_figures()``, called in every notebook's import
cell, shows them as JPEG at 80 dpi (tens of kB each, where PNGs weighed up to 2.8 MB). The live
widgets' state (their pictures as PNG) is not saved: it only serves a viewer without a kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
MB = 1_000_000
EACH_MAX = 1 * MB
TOTAL_MAX = 5 * MB
EXECUTE = "jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.store_widget_state=False"


def _figure_formats(nb: dict) -> set[str]:
    return {
        kind
        for cell in nb["cells"]
        for output in cell.get("outputs", [])
        for kind in output.get("data", {})
        if kind.startswith("image/")
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_is_at_most_1_mb(path):
    size = path.stat().st_size
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert size <= EACH_MAX, (
        f"{path.name} weighs {size / MB:.2f} MB (> {EACH_MAX / MB:.0f} MB); figures saved as "
        f"{sorted(_figure_formats(nb))}: is viz.compact_figures() in its import cell? Re-run it with: {EXECUTE}"
    )


def test_all_notebooks_together_are_at_most_5_mb():
    total = sum(path.stat().st_size for path in NOTEBOOKS)
    assert total <= TOTAL_MAX, f"the notebooks weigh {total / MB:.2f} MB together (> {TOTAL_MAX / MB:.0f} MB)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_state_is_saved(path):
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert "widgets" not in metadata, f"{path.name} saved its widgets' state; re-run it with: {EXECUTE}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_compact(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    if not any(c["cell_type"] == "code" for c in nb["cells"]):
        return  # the index (00) is Markdown only: no figures
    import_cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "import helpers" in "".join(c["source"]))
    assert "viz.compact_figures()" in "".join(import_cell["source"]), f"{path.name}: the import cell sets the figures"

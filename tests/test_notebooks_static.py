"""The committed notebooks, read as JSON (nothing is executed): structure and clean outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
INDEX = NOTEBOOK_DIR / "00_index.ipynb"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb") if p != INDEX)
# What helpers.progress leaves in a saved notebook once its bar is done.
PROGRESS_LINE = re.compile(r".+: \d+( of \d+)? done")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
MARKER = "NBVAL_IGNORE_OUTPUT"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def output_texts(cell: dict):
    """Every piece of text a cell's outputs hold (streams, text/plain, text/html, errors)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            yield output.get("name", ""), "".join(output.get("text", ""))
        elif output.get("output_type") == "error":
            yield "error", output.get("ename", "") + ": " + output.get("evalue", "")
        else:
            for key, value in output.get("data", {}).items():
                if key.startswith("text/"):
                    yield key, "".join(value) if isinstance(value, list) else value


def test_notebooks_are_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert len(numbers) >= 5 and numbers == list(range(1, len(numbers) + 1))


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, load(request.param)


def test_navigation_links_in_first_and_last_cells(notebook):
    path, nb = notebook
    first, last = nb["cells"][0], nb["cells"][-1]
    assert first["cell_type"] == "markdown" and last["cell_type"] == "markdown"
    assert source(first).lstrip().startswith("# "), "the first cell starts with the title"
    index = NOTEBOOKS.index(path)
    expected = set()
    if index > 0:
        expected.add(NOTEBOOKS[index - 1].name)
    if index + 1 < len(NOTEBOOKS):
        expected.add(NOTEBOOKS[index + 1].name)
    for cell in (first, last):
        targets = {target for _, target in LINK.findall(source(cell))}
        assert expected <= targets, f"{path.name}: navigation must link to {sorted(expected)}"
        assert INDEX.name in targets, f"{path.name}: navigation must link to the index"
        for target in targets:
            if target.endswith(".ipynb"):
                assert (path.parent / target).is_file(), f"{path.name} links to missing {target}"


def uses_a_pretrained_model(nb: dict) -> bool:
    """Notebooks 01-08 explain an ImageNet model from ``load_model(MODEL)``; 09 trains its own."""
    return any("load_model(MODEL)" in source(c) for c in nb["cells"] if c["cell_type"] == "code")


def test_parameters_cell(notebook):
    path, nb = notebook
    code = [source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    # the first code cell holds the parameters: one UPPER_CASE assignment per line
    assignments = re.findall(r"^[A-Z][A-Z0-9_]*(?:, [A-Z][A-Z0-9_]*)* = ", code[0], re.M)
    assert len(assignments) >= 3 and len(assignments) == len(code[0].strip().splitlines()), (
        f"{path.name}: the first code cell is the parameters cell"
    )
    if uses_a_pretrained_model(nb):
        assert 'MODEL = "auto"' in code[0], f'{path.name}: the parameters start with MODEL = "auto"'
        assert re.search(r'^IMAGE = "', code[0], re.M)
    assert re.search(r"^LAYER = ", code[0], re.M)


def test_outputs_are_clean(notebook):
    path, nb = notebook
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for kind, text in output_texts(cell):
            where = f"{path.name} cell {number}"
            assert kind not in ("stderr", "error"), f"{where}: {kind} output: {text[:200]}"
            assert "Traceback" not in text, f"{where}: traceback in the output"
            assert "Error" not in text, f"{where}: 'Error' in the output: {text[:200]}"
            assert "warning" not in text.lower(), f"{where}: a warning in the output: {text[:200]}"


def test_every_cell_was_executed_in_order(notebook):
    path, nb = notebook
    counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]
    assert None not in counts, f"{path.name}: not every code cell was executed"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not run top to bottom in one go"


def test_only_live_widget_cells_ignore_their_output(notebook):
    path, nb = notebook
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        text = source(cell)
        shows_widget = any(
            output.get("metadata", {}).get("helpers", {}).get("widget")  # scripts/store_widget_fallbacks.py
            # a progress bar, replaced by its final line when the cell finished
            or PROGRESS_LINE.fullmatch("".join(output.get("data", {}).get("text/plain", "")))
            for output in cell.get("outputs", [])
        )
        marked = MARKER in text or "nbval-ignore-output" in cell.get("metadata", {}).get("tags", [])
        # training a model (09) is not bit-reproducible across CPUs: its log may be ignored too
        trains = "shortcut.train(" in text
        assert marked == (shows_widget or trains), (
            f"{path.name} cell {number}: {MARKER} must mark exactly the cells that display a live widget "
            "or train a model"
        )
        if MARKER in text:
            assert text.lstrip().startswith(f"# {MARKER}"), f"{path.name} cell {number}: marker on the first line"


def test_outputs_come_from_the_offline_model(notebook):
    path, nb = notebook
    if not uses_a_pretrained_model(nb):
        # 09 trains its own model; it must not load an ImageNet one behind the reader's back
        assert not any(
            re.search(r"(?<![.\w])load_model\(", source(c)) for c in nb["cells"] if c["cell_type"] == "code"
        ), f"{path.name} loads helpers.load_model without a MODEL parameter"
        return
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and "load_model(MODEL)" in source(cell):
            stdout = "".join(t for kind, t in output_texts(cell) if kind == "stdout")
            assert "Using EfficientNet-Lite0: " in stdout, (
                f"{path.name} cell {number}: the stored outputs must come from EfficientNet-Lite0"
            )
            break


def test_sanitize_file_keeps_the_model_name():
    config = (NOTEBOOK_DIR / "sanitize.cfg").read_text()
    regexes = dict(re.findall(r"^regex:\s*(.+)$\n^replace:\s*(.+)$", config, re.M))
    line = "Using EfficientNet-Lite0: VGG16's weights are not cached (offline)."
    sanitized = line
    for pattern, replacement in regexes.items():
        sanitized = re.sub(pattern, replacement, sanitized)
    assert sanitized == "Using EfficientNet-Lite0: <reason>"


def relative_links(nb: dict):
    """Every relative link target of the Markdown cells (web links and anchors left out)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for _, target in LINK.findall(source(cell)):
                if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
                    yield target.split("#")[0]


@pytest.mark.parametrize("path", [INDEX, *NOTEBOOKS], ids=lambda p: p.name)
def test_every_relative_link_resolves_inside_the_folder_jupyterlab_serves(path):
    """`make lab` serves notebooks/ only: a link to ../README.md opens nothing there."""
    for target in relative_links(load(path)):
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(NOTEBOOK_DIR), f"{path.name}: {target} is outside notebooks/"
        assert resolved.is_file(), f"{path.name}: {target} does not exist"


def test_the_index_links_every_notebook_and_the_first_back():
    targets = set(relative_links(load(INDEX)))
    assert targets == {p.name for p in NOTEBOOKS}
    first = load(NOTEBOOKS[0])["cells"][0]
    assert INDEX.name in {t for _, t in LINK.findall(source(first))}


def test_lab_serves_the_notebooks_folder():
    makefile = (NOTEBOOK_DIR.parent / "Makefile").read_text()
    assert "--notebook-dir=notebooks" in makefile


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_widgets_show_their_fallback_not_a_dead_view(path):
    """With no kernel, JupyterLab renders a stored widget view as "Error displaying widget"."""
    for number, cell in enumerate(load(path)["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data, (
                f"{path.name} cell {number}: stored widget view; run scripts/execute_notebooks.sh"
            )
            if output.get("metadata", {}).get("helpers", {}).get("widget"):
                text = "".join(data.get("text/plain", ""))
                assert text and "VBox(" not in text and "IntProgress(" not in text, (path.name, number, text)

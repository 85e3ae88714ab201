"""Keep what a reader can see of live widgets in a saved notebook: their text and picture, not their view.

A stored widget output holds ``application/vnd.jupyter.widget-view+json`` (a reference to a
widget model that only exists while the kernel runs) beside ``text/plain`` (and, for
``helpers.widgets.FigureSlider``, a JPEG of the first figure). JupyterLab prefers the widget
view and, with no kernel behind it, shows "Error displaying widget: model not found". Without the
view, JupyterLab, GitHub and nbviewer all show the fallback; running the cell brings the live
widget back. The output is marked ``"helpers": {"widget": true}`` so the tests know it was one.

    python scripts/store_widget_fallbacks.py notebooks/NN_*.ipynb
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

VIEW = "application/vnd.jupyter.widget-view+json"


def strip(path: Path) -> int:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    stripped = 0
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if VIEW in data:
                del data[VIEW]
                output.setdefault("metadata", {})["helpers"] = {"widget": True}
                stripped += 1
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return stripped


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {strip(Path(name))} widget views replaced by their fallback")

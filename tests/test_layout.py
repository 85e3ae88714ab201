"""The package's shape (issue #12): no module over 600 lines, and imports that point down the layers.

The layers are the import-linter contract in ``pyproject.toml`` (``[tool.importlinter]``),
checked by ``lint-imports`` as ``make lint`` does; the last test shows the check can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 600
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` run in ``root`` on the ``helpers`` found there (not the installed one)."""
    # A dev requirement (requirements-dev.txt): missing, it fails here rather than skipping the check.
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: pip install -r requirements-dev.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_no_module_is_over_600_lines():
    counts = {
        path.relative_to(REPO).as_posix(): _line_count(path)
        for path in (REPO / "helpers").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert counts, "no modules found under helpers/"
    offenders = {name: n for name, n in sorted(counts.items(), key=lambda item: -item[1]) if n > MAX_LINES}
    if offenders:
        print("\n".join(f"{n:6d}  {name}" for name, n in offenders.items()))
    assert not offenders, f"modules over {MAX_LINES} lines (split them by concern): " + ", ".join(
        f"{name} ({n} lines)" for name, n in offenders.items()
    )


def test_imports_point_down_the_layers():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "importer", "imported"),
    [
        ("models/cache.py", "from ..explain import grad_cam", "helpers.models", "helpers.explain"),  # siblings
        ("graph/layers.py", "from ..cli import main", "helpers.graph", "helpers.cli"),  # upward
    ],
    ids=["models-imports-explain", "graph-imports-cli"],
)
def test_the_layer_contract_can_fail(tmp_path, module, line, importer, imported):
    # A copy of the package with one forbidden import added: lint-imports must report the contract broken.
    shutil.copytree(REPO / "helpers", tmp_path / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "helpers" / module
    target.write_text(target.read_text() + f"\n{line}  # breaks the layers on purpose\n")

    result = _lint_imports(tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "helpers: imports point down the layers BROKEN" in output, output
    assert f"{importer} is not allowed to import {imported}" in output, output
    assert f"helpers.{module.removesuffix('.py').replace('/', '.')} -> {imported}" in output, output

"""A real (non-editable) install works: build the wheel, install it outside the repository, run it.

The editable install used for development hides packaging mistakes -- a data file read from the
source tree works there and nowhere else. Here the wheel is built from a copy of the working tree,
installed with ``pip --target`` into a temporary folder, and run from a folder outside the
repository, so only the installed files can be imported (dependencies still come from the venv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

# Not copied into the build folder: environments, VCS data and build leftovers.
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "artifacts")
CAT_NAMES = {"tiger_cat", "Egyptian_cat", "tabby"}

pytestmark = pytest.mark.slow


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy so that build/ and *.egg-info never land in the working tree."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=SKIP)
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "dist")], cwd=source)
    (built,) = (root / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("install") / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)])
    return target


@pytest.fixture(scope="module")
def outside(site, tmp_path_factory) -> dict:
    """``subprocess.run`` keywords: a cwd outside the repository, only the install dir on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return {"cwd": tmp_path_factory.mktemp("elsewhere"), "env": env}


def test_the_wheel_holds_the_package_and_its_class_index_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "helpers/resources/imagenet_class_index.json" in names
    assert "helpers/cli.py" in names
    top_level = {name.split("/")[0] for name in names}
    assert {folder for folder in top_level if not folder.endswith(".dist-info")} == {"helpers"}
    assert not [name for name in names if "test" in name.split("/")[-1] or name.endswith(".ipynb")]


def test_the_installed_copy_is_the_one_imported(site, outside):
    code = "import helpers, helpers.imagenet as i; print(helpers.__file__); print(len(i.class_names()))"
    out = _run([sys.executable, "-c", code], **outside).stdout.split()
    assert Path(out[0]).is_relative_to(site) and out[1] == "1000"


def _top_names(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines()]


def test_python_m_helpers_predicts_chelsea(outside):
    result = _run(
        [sys.executable, "-m", "helpers", "predict", "chelsea", "--model", "efficientnet_lite0", "--top", "3"],
        **outside,
    )
    names = _top_names(result.stdout)
    assert len(names) == 3 and names[0] in CAT_NAMES and {"tiger_cat", "Egyptian_cat"} <= set(names)


def test_the_console_script_predicts_chelsea(site, outside):
    script = site / "bin" / "gradcam-helpers"
    result = _run([str(script), "predict", "chelsea", "--model", "efficientnet_lite0", "--top", "3"], **outside)
    assert _top_names(result.stdout)[0] in CAT_NAMES

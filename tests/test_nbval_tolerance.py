"""The root conftest.py's nbval extension: printed numbers may differ by float noise, nothing else."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "conftest.py"


def _load_plugin():
    # Under its own name: pytest already holds the root conftest (and tests/conftest.py) as "conftest".
    spec = importlib.util.spec_from_file_location("nbval_float_noise", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = _load_plugin()


@pytest.mark.parametrize(
    ("ref", "test"),
    [
        ("rank correlation 0.37", "rank correlation 0.38"),  # a rounding boundary: one unit in the last digit
        ("0.37", "0.36"),
        ("-0.00", "0.00"),
        ("max |split - full| = 0.0", "max |split - full| = 1.2e-07"),
        ("value 1.5e-05", "value 1.6e-05"),  # one unit of the mantissa's last digit
        ("x = 0.12345678", "x = 0.12355"),  # within RTOL = 1e-3 of the value
        ("logit=8.328", "logit=8.329"),
        ("tiger cat: p=0.088, logit=8.328", "tiger cat: p=0.089, logit=8.327"),
        ("share 45.5%", "share 45.6%"),
        # width-aligned columns shift when a sign appears or disappears
        ("corr -0.00   | 0.96", "corr 0.00    | 0.96"),
        ("9.99  | 1.00", "10.00 | 1.00"),
        ("[-0.   0.5]", "[0.  0.5]"),  # NumPy drops the sign column
        ("[ 0.01 -0.5 ]", "[0.02 -0.5]"),
    ],
)
def test_float_noise_passes(ref, test):
    assert plugin.numbers_match(ref, test)


@pytest.mark.parametrize(
    ("ref", "test"),
    [
        ("rank correlation 0.37", "rank correlation 0.52"),  # a real change
        ("0.37", "0.39"),  # two units in the last digit
        ("606 channels speak for tiger cat", "607 channels speak for tiger cat"),  # counts are exact
        ("SHA-256: 72e053fba7ee3736 ...", "SHA-256: 72e053fba7ee3737 ..."),  # hex digests are text
        ("SHA-256: 72e053fba7ee3736 ...", "SHA-256: 72e054fba7ee3736 ..."),
        ("digest 123e4567", "digest 123e4568"),  # no sign: not an exponent
        ("feature map 7x7", "feature map 7x8"),
        ("layer block5_conv3", "layer block5_conv4"),
        ("shape (224, 224)", "shape (224, 225)"),
        ("p=0.088", "P=0.088"),  # the text between numbers is exact
        ("0.5\n0.5", "0.5 0.5"),  # newlines are exact
        ("0.5", "0.5 0.5"),  # the count of numbers is exact
        ("empty: 0.00 (empty Grad-CAM)", "empty: 0.00"),
        ("[0.   0.21]", "[0.01 0.21]"),  # NumPy's bare "0." has no last-digit slack
        ("epoch 3", "epoch 3.0"),  # an int does not become a float
        ("version 2.21.0", "version 2.21.1"),
    ],
)
def test_real_changes_fail(ref, test):
    assert not plugin.numbers_match(ref, test)


def test_tolerance_edges_are_exact():
    # ulp + RTOL * |ref|: 0.01 + 0.00037 around 0.37, computed in decimal, not binary, floats
    assert plugin.within_tolerance("0.37", "0.38037")
    assert not plugin.within_tolerance("0.37", "0.38038")
    assert plugin.within_tolerance("1000.0", "1001.1")  # RTOL * 1000 = 1, plus 0.1
    assert not plugin.within_tolerance("1000.0", "1001.2")
    assert plugin.within_tolerance("0.", "0.000001")  # ATOL only
    assert not plugin.within_tolerance("0.", "0.00001")


def test_out_of_tolerance_names_the_numbers():
    assert plugin.out_of_tolerance("a 0.37 b 0.5", "a 0.52 b 0.5") == [("0.37", "0.52")]
    assert plugin.out_of_tolerance("a 0.37", "b 0.37") is None


def test_absorb_noise_replaces_only_matching_texts_and_keeps_the_new_outputs():
    def stream(text):
        return {"output_type": "stream", "name": "stdout", "text": text}

    def plain(text):
        return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}}

    test = [stream("corr 0.38\n"), plain("0.52")]
    ref = [stream("corr 0.37\n"), plain("0.37")]
    patched, notes = plugin.absorb_noise(test, ref, sanitize=lambda s: s)
    assert patched[0]["text"] == "corr 0.37\n"
    assert patched[1]["data"]["text/plain"] == "0.52"
    assert test[0]["text"] == "corr 0.38\n", "the kernel's outputs stay as they were"
    assert notes == ["numbers beyond float-noise tolerance in text/plain: 0.37 -> 0.52"]


# ---------------------------------------------------------------- end to end, through pytest --nbval


def _notebook(cases: dict[str, tuple[str, str]]) -> dict:
    """A notebook with a code cell per case: it prints the new text, its saved output is the stored one."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": count,
            "id": name,
            "metadata": {},
            "source": f"print({printed!r})",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": stored + "\n"}],
        }
        for count, (name, (stored, printed)) in enumerate(cases.items(), start=1)
    ]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


CASES = {  # cell: (stored output, new output), in one notebook: one kernel start
    "noise": ("corr 0.37, 606 channels", "corr 0.38, 606 channels"),
    "change": ("corr 0.37, 606 channels", "corr 0.52, 606 channels"),
    "count": ("corr 0.37, 606 channels", "corr 0.37, 605 channels"),
}


def test_nbval_passes_float_noise_and_fails_real_changes(tmp_path):
    shutil.copy(PLUGIN, tmp_path / "conftest.py")  # the plugin under test, as the notebooks' conftest
    (tmp_path / "cases.ipynb").write_text(json.dumps(_notebook(CASES)))
    # Only nbval and the plugin: no other installed pytest plugins, no repository settings, no cache.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "nbval.plugin",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            "-v",
            "--rootdir",
            str(tmp_path),
            "-o",
            "addopts=",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    report = run.stdout
    outcomes = re.findall(r"::Cell (\d) (PASSED|FAILED)", report)
    assert outcomes == [("0", "PASSED"), ("1", "FAILED"), ("2", "FAILED")], report
    assert "numbers beyond float-noise tolerance in stdout: 0.37 -> 0.52" in report, report
    assert "606 -> 605" in report, report

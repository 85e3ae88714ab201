"""``python -m helpers predict|explain``: run as a learner would, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO


def run(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "helpers", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_predict_cat_dog_prints_bull_mastiff_first():
    out = run("predict", "cat_dog", "--model", "efficientnet_lite0").stdout.splitlines()
    assert out[0].split()[:2] == ["243", "bull_mastiff"]
    assert len(out) == 5


def test_predict_json_is_a_list_of_index_name_probability(tmp_path):
    from PIL import Image
    from helpers import load_sample

    path = tmp_path / "chelsea.jpg"
    Image.fromarray(load_sample("chelsea")).save(path)
    result = run("predict", str(path), "--model", "efficientnet_lite0", "--top", "3", "--json")
    rows = json.loads(result.stdout)  # stdout is pure JSON: the model line went to stderr
    assert [set(r) for r in rows] == [{"index", "name", "probability"}] * 3
    assert rows[0]["name"] in {"Egyptian_cat", "tiger_cat", "tabby"}
    assert rows[0]["probability"] >= rows[1]["probability"] >= rows[2]["probability"]


def test_explain_writes_a_map_aligned_with_the_model_input(tmp_path):
    out, png = tmp_path / "cam.npy", tmp_path / "cam.png"
    run("explain", "cat_dog", "--method", "gradcam", "--class", "tiger cat", "--model", "efficientnet_lite0",
        "--out", str(out), "--png", str(png))
    heatmap = np.load(out)
    assert heatmap.dtype == np.float32 and heatmap.shape == (224, 224)
    assert heatmap.min() >= 0.0 and 0.9 < heatmap.max() <= 1.0  # bilinear: the peak falls between pixels
    from PIL import Image

    assert Image.open(png).size == (640, 480)  # the overlay is drawn on the whole photo


@pytest.mark.parametrize("method", ["guided-backprop", "guided-gradcam", "counterfactual"])
def test_explain_every_method(tmp_path, method):
    out = tmp_path / "map.npy"
    run("explain", "chelsea", "--method", method, "--class", "282", "--model", "efficientnet_lite0", "--out", str(out))
    saved = np.load(out)
    assert saved.shape == ((224, 224) if method == "counterfactual" else (224, 224, 3))
    assert np.isfinite(saved).all()


def test_errors_are_one_clear_line(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    result = run("predict", str(bad), "--model", "efficientnet_lite0", check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    result = run("explain", "chelsea", "--class", "1000", "--model", "efficientnet_lite0",
                 "--out", str(tmp_path / "x.npy"), check=False)
    assert result.returncode == 2 and "out of range" in result.stderr and "Traceback" not in result.stderr
    result = run("explain", "chelsea", "--layer", "nope", "--model", "efficientnet_lite0",
                 "--out", str(tmp_path / "x.npy"), check=False)
    assert result.returncode == 2 and "no layer named 'nope'" in result.stderr

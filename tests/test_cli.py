"""``python -m helpers predict|explain``: in process on the session's model, plus one real subprocess.

Every test but the smoke test calls ``helpers.cli.main`` directly and reuses the ``lite0`` fixture,
so the model is loaded once per session instead of once per subprocess (minutes saved).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from helpers import cli

MODEL = ["--model", "efficientnet_lite0"]


@pytest.fixture(autouse=True)
def session_model(monkeypatch, lite0):
    """The CLI's model loading returns the session's already-loaded Lite0; each load is recorded."""
    loads = []

    def load(name):
        assert name == "efficientnet_lite0"
        loads.append(name)
        return lite0

    monkeypatch.setattr(cli, "_load_model", load)
    return loads


def run(capsys, *args):
    """``(exit status, stdout, stderr)`` of ``python -m helpers *args``, in process."""
    status = cli.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_error_line(status, err, *fragments):
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.slow
def test_smoke_a_real_subprocess_prints_bull_mastiff_first():
    """The one end-to-end run, as a learner would type it (module entry point, model loading, stdout)."""
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "predict", "cat_dog", *MODEL],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].split()[:2] == ["243", "bull_mastiff"]
    assert len(out) == 5


def test_predict_json_is_a_list_of_index_name_probability(capsys, tmp_path, chelsea):
    path = tmp_path / "chelsea.jpg"
    Image.fromarray(chelsea).save(path)
    status, out, _ = run(capsys, "predict", path, *MODEL, "--top", "3", "--json")
    assert status == 0
    rows = json.loads(out)  # stdout is pure JSON: the model line goes to stderr
    assert [set(r) for r in rows] == [{"index", "name", "probability"}] * 3
    assert rows[0]["name"] in {"Egyptian_cat", "tiger_cat", "tabby"}
    assert rows[0]["probability"] >= rows[1]["probability"] >= rows[2]["probability"]


def test_explain_writes_a_map_aligned_with_the_model_input(capsys, tmp_path):
    out, png = tmp_path / "cam.npy", tmp_path / "cam.png"
    status, stdout, _ = run(
        capsys, "explain", "cat_dog", "--method", "gradcam", "--class", "tiger cat", *MODEL, "--out", out, "--png", png
    )
    assert status == 0
    heatmap = np.load(out)
    assert heatmap.dtype == np.float32 and heatmap.shape == (224, 224)
    assert heatmap.min() >= 0.0 and 0.9 < heatmap.max() <= 1.0  # bilinear: the peak falls between pixels
    assert Image.open(png).size == (640, 480)  # the overlay is drawn on the whole photo
    assert f"saved to {out}\n" in stdout and f"picture saved to {png}\n" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.npy", "cam.png"]  # no temporary file left


def test_the_method_choices_are_the_registry():
    from helpers.explain import REGISTRY

    choices = next(
        a for a in cli._parser()._subparsers._group_actions[0].choices["explain"]._actions if a.dest == "method"
    )
    assert set(choices.choices) == {name.replace("_", "-") for name in REGISTRY}
    assert {"gradcam-plus-plus", "score-cam", "saliency"} <= set(choices.choices)


@pytest.mark.parametrize(
    "method", ["guided-backprop", "guided-gradcam", "counterfactual", "gradcam-plus-plus", "score-cam", "saliency"]
)
def test_explain_every_method(capsys, tmp_path, method, lite0, chelsea):
    from helpers.explain import REGISTRY

    out, png = tmp_path / "map.npy", tmp_path / "map.png"
    status, stdout, _ = run(
        capsys, "explain", "chelsea", "--method", method, "--class", "282", *MODEL, "--out", out, "--png", png
    )
    assert status == 0, stdout
    saved = np.load(out)
    entry = REGISTRY[method.replace("-", "_")]
    assert saved.shape == ((224, 224) if entry.kind == "heatmap" else (224, 224, 3))
    # The CLI saves exactly what the API gives.
    expected = entry.function(lite0, chelsea, 282, progress=False) if entry.name == "score_cam" else None
    expected = expected or entry.function(lite0, chelsea, 282)
    np.testing.assert_allclose(saved, expected.map, rtol=1e-5, atol=1e-6)
    # heatmaps are drawn over the whole photo, gradient pictures at the model's input size
    size = (chelsea.shape[1], chelsea.shape[0]) if entry.kind == "heatmap" else (224, 224)
    assert f"{method} for 282 tiger cat" in stdout and Image.open(png).size == size


def test_out_without_npy_gets_it_appended_and_the_message_names_the_real_file(capsys, tmp_path):
    status, stdout, _ = run(capsys, "explain", "chelsea", *MODEL, "--out", tmp_path / "new" / "map")
    assert status == 0
    assert f"saved to {tmp_path / 'new' / 'map.npy'}\n" in stdout
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["map.npy"]


def test_errors_are_one_clear_line(capsys, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    assert_one_error_line(*run(capsys, "predict", bad, *MODEL)[::2])
    out = tmp_path / "x.npy"
    assert_one_error_line(
        *run(capsys, "explain", "chelsea", "--class", "1000", *MODEL, "--out", out)[::2], "out of range"
    )
    assert_one_error_line(
        *run(capsys, "explain", "chelsea", "--layer", "nope", *MODEL, "--out", out)[::2], "no layer named 'nope'"
    )
    assert not out.exists()


@pytest.mark.parametrize("target", ["--5", "²", "-5", "٣"])
def test_odd_class_values_are_one_error_line(capsys, tmp_path, target):
    """'--5' and '²' used to crash int(); now any non-ASCII-integer is a name, and an unknown one an error."""
    out = tmp_path / "x.npy"
    assert_one_error_line(*run(capsys, "explain", "chelsea", f"--class={target}", *MODEL, "--out", out)[::2])
    assert not out.exists()


@pytest.mark.parametrize(
    ("place", "fragment"),
    [
        ("file.txt/x.npy", "is not a folder"),  # under a regular file: unwritable even for root
        ("file.txt/deeper/x", "is not a folder"),
        ("/dev/null/x.npy", "'/dev/null' is not a folder"),
        (".", "is a folder"),
    ],
)
def test_unwritable_out_is_refused_before_any_work(capsys, tmp_path, session_model, place, fragment):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    before = sorted(tmp_path.rglob("*"))
    status, _, err = run(capsys, "explain", "chelsea", *MODEL, "--out", tmp_path / place)
    assert_one_error_line(status, err, "--out", fragment)
    assert session_model == []  # refused before the model was even loaded
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("png", "fragment"),
    [
        ("file.txt/x.png", "is not a folder"),
        ("x.xyz", "cannot save an RGB picture as '.xyz'"),
        ("x.xbm", "cannot save an RGB picture as '.xbm'"),  # Pillow knows XBM but only for 1-bit pictures
        ("x", "has no extension"),
    ],
)
def test_bad_png_is_refused_before_any_work_and_nothing_is_written(capsys, tmp_path, session_model, png, fragment):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    status, _, err = run(capsys, "explain", "chelsea", *MODEL, "--out", tmp_path / "x.npy", "--png", tmp_path / png)
    assert_one_error_line(status, err, "--png", fragment)
    assert session_model == []
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # in particular no x.npy


def test_a_failed_write_leaves_nothing_behind(capsys, tmp_path, monkeypatch):
    """The picture fails while being written, after the map: no map, no temporary files, no new folders."""

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    monkeypatch.setattr(cli, "picture_format", lambda png: "PNG")  # the up-front check would trip on the patch
    status, _, err = run(
        capsys,
        "explain",
        "chelsea",
        *MODEL,
        "--out",
        tmp_path / "maps" / "x.npy",
        "--png",
        tmp_path / "pictures" / "deep" / "x.png",
    )
    assert_one_error_line(status, err, "nothing written", "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_stay_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explain", "chelsea"])  # --out is required
    assert exit_.value.code == 2
    assert "--out" in capsys.readouterr().err

"""The explorer widgets, headless: compute once, redraw from the cache, survive bad uploads."""

from __future__ import annotations

import datetime
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from conftest import gap_dense_model
from helpers import viz, wrap_keras_model
from helpers.explain import gradients
from helpers.widgets import Explorer, class_label

ALL_METHODS = ("gradcam", "counterfactual", "guided_backprop", "guided_gradcam")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(explorer: Explorer, content: bytes, name: str = "photo.png") -> None:
    """What the browser does: set FileUpload.value to a tuple of one file dict (ipywidgets 8)."""
    explorer.upload_button.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        },
    )


@pytest.fixture
def tiny():
    return wrap_keras_model(gap_dense_model(seed=3, classes=4))


@pytest.fixture
def photo():
    return np.random.default_rng(1).integers(0, 256, size=(24, 20, 3), dtype=np.uint8)


@pytest.fixture
def explorer(tiny, photo):
    return Explorer(tiny, photo, top_k=4, methods=ALL_METHODS, upload=True)


def test_construction_computes_once(tiny, photo):
    before = gradients.calls["gradients"]
    explorer = Explorer(tiny, photo, top_k=3, methods=ALL_METHODS)
    assert gradients.calls["gradients"] == before + 1
    assert explorer.computations == 1
    assert len(explorer.explanations) == 3
    assert explorer.class_slider.max == 2
    assert explorer.picture.shape == (16, 16, 3) and explorer.picture.dtype == np.uint8
    assert bytes(explorer.image_widget.value).startswith(b"\x89PNG")


def test_sliders_only_redraw(explorer):
    before = gradients.calls["gradients"]
    pictures = []
    for rank in range(4):
        explorer.class_slider.value = rank
        pictures.append(explorer.picture.copy())
    for method in ALL_METHODS:
        explorer.method_picker.value = method
        explorer.alpha_slider.value = 0.8
        explorer.alpha_slider.value = 0.1
    assert gradients.calls["gradients"] == before  # no gradient computed by any of it
    assert explorer.computations == 1
    assert any(not np.array_equal(pictures[0], p) for p in pictures[1:])


def test_class_slider_label_names_class_and_probability(explorer):
    explorer.class_slider.value = 1
    second = explorer.explanations[1]["gradcam"]
    assert class_label(second) in explorer.class_label.value
    assert f"(p={second.probability:.3f})" in explorer.class_label.value
    assert explorer.class_label.value.startswith("<b>#2: ")


def test_alpha_zero_is_the_photo_and_one_is_the_colormap(explorer, photo):
    explorer.method_picker.value = "gradcam"
    explorer.alpha_slider.value = 0.0
    np.testing.assert_array_equal(explorer.picture, viz.to_uint8(explorer.photo))
    explorer.alpha_slider.value = 1.0
    np.testing.assert_array_equal(explorer.picture, viz.colorize(explorer.current.map))
    explorer.alpha_slider.value = 0.5
    halfway = 0.5 * explorer.photo + 0.5 * viz.colorize(explorer.current.map)
    assert np.abs(explorer.picture.astype(float) - halfway).max() <= 1.0


def test_guided_methods_ignore_alpha(explorer):
    explorer.method_picker.value = "guided_backprop"
    assert explorer.alpha_slider.disabled
    expected = viz.to_uint8(viz.gradient_image(explorer.current.map) * 255)
    np.testing.assert_array_equal(explorer.picture, expected)
    explorer.alpha_slider.value = 0.9
    np.testing.assert_array_equal(explorer.picture, expected)
    explorer.method_picker.value = "counterfactual"
    assert not explorer.alpha_slider.disabled


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is a text file, not a photo", "is not an image file"),
        (b"", "is empty"),
        ("truncated", "damaged or truncated"),
        ("tiny", "at least 8x8"),
    ],
)
def test_bad_upload_shows_a_message_and_keeps_the_photo(explorer, content, expected):
    if content == "truncated":
        noise = np.random.default_rng(2).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        content = png_bytes(noise)[:2000]  # the full file is ~12 kB
    elif content == "tiny":
        content = png_bytes(np.zeros((4, 4, 3), np.uint8))
    explorer.class_slider.value = 1
    picture, photo = explorer.picture.copy(), explorer.photo.copy()
    before = gradients.calls["gradients"]
    upload(explorer, content, name="holiday.png")
    assert expected in explorer.message.value
    assert "holiday.png" in explorer.message.value
    assert "Traceback" not in explorer.message.value
    np.testing.assert_array_equal(explorer.picture, picture)
    np.testing.assert_array_equal(explorer.photo, photo)
    assert explorer.class_slider.value == 1
    assert gradients.calls["gradients"] == before
    assert explorer.computations == 1
    assert explorer.upload_button.value == ()  # cleared, so the same file can be chosen again


def test_good_upload_recomputes_once(explorer):
    old_picture = explorer.picture.copy()
    explorer.class_slider.value = 2
    before = gradients.calls["gradients"]
    new_photo = np.random.default_rng(7).integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    upload(explorer, png_bytes(new_photo), name="mine.png")
    assert gradients.calls["gradients"] == before + 1
    assert explorer.computations == 2
    assert "mine.png" in explorer.message.value
    assert explorer.class_slider.value == 0
    np.testing.assert_allclose(explorer.photo, viz.to_uint8(explorer.photo))  # model-sized copy
    assert not np.array_equal(explorer.picture, old_picture)
    # and the new cache is what is drawn
    explorer.method_picker.value = "gradcam"
    explorer.alpha_slider.value = 1.0
    np.testing.assert_array_equal(explorer.picture, viz.colorize(explorer.explanations[0]["gradcam"].map))
    assert gradients.calls["gradients"] == before + 1


def test_without_guided_methods_no_guided_pass(tiny, photo):
    explorer = Explorer(tiny, photo, top_k=2)
    assert "guided_backprop" not in explorer.explanations[0]
    assert explorer.upload_button is None
    assert len(explorer.widget.children) == 4  # class row, alpha, picture, message: no method menu


def test_bad_arguments(tiny, photo):
    with pytest.raises(ValueError, match="methods"):
        Explorer(tiny, photo, methods=("gradcam", "lime"))
    with pytest.raises(ValueError, match="alpha"):
        Explorer(tiny, photo, alpha=1.5)


def test_display_and_static_figure(explorer):
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "Run the notebook" in data["text/plain"] and "PNG" not in data["text/plain"]
    figure = explorer.figure()
    try:
        titles = [ax.get_title() for ax in figure.axes]
        first = explorer.explanations[0]["gradcam"]
        assert any(class_label(first) in t for t in titles)
        labels = [ax.get_ylabel() for ax in figure.axes]
        assert labels.count("relevance (0 = none, 1 = strongest)") == 2  # Grad-CAM and counterfactual rows
    finally:
        plt.close(figure)


def test_real_model_on_chelsea(lite0, chelsea):
    before = gradients.calls["gradients"]
    explorer = Explorer(lite0, chelsea, top_k=5, methods=("gradcam", "guided_gradcam"))
    assert gradients.calls["gradients"] == before + 1
    assert explorer.picture.shape == (224, 224, 3)
    names = [e["gradcam"].class_name for e in explorer.explanations]
    assert names[:3] == ["Egyptian cat", "tiger cat", "tabby"]
    first = explorer.picture.copy()
    explorer.class_slider.value = 1
    assert "tiger cat (p=0.088)" in explorer.class_label.value
    assert not np.array_equal(first, explorer.picture)
    explorer.alpha_slider.value = 0.0
    np.testing.assert_array_equal(explorer.picture, viz.to_uint8(explorer.photo))
    explorer.method_picker.value = "guided_gradcam"
    assert explorer.picture.shape == (224, 224, 3)
    assert gradients.calls["gradients"] == before + 1

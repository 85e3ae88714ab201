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
    assert len(explorer.widget.children) == 6  # class row, alpha, picture, colour bar, legend, message: no menu


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
        # the probability on its own line, so that long class names do not run into each other
        assert f"#1 {first.class_name}\n(p={first.probability:.3f})" in titles
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


def test_gradient_only_explorers_have_no_alpha_slider_and_no_colour_bar(tiny, photo):
    guided = Explorer(tiny, photo, top_k=2, methods=("guided_backprop",))
    assert guided.alpha_slider not in guided.widget.children
    assert guided.colorbar_widget.layout.display == "none" and "grey = no gradient" in guided.legend.value
    mixed = Explorer(tiny, photo, top_k=2, methods=("gradcam", "guided_gradcam"))
    assert mixed.alpha_slider in mixed.widget.children
    assert mixed.colorbar_widget.layout.display is None  # the heatmap is shown first, with its scale
    assert bytes(mixed.colorbar_widget.value).startswith(b"\x89PNG")
    mixed.method_picker.value = "guided_gradcam"
    assert mixed.colorbar_widget.layout.display == "none"


def test_figure_slider_draws_each_value_once_and_shows_a_picture_when_stored():
    import ipywidgets as widgets

    from helpers.widgets import FigureSlider

    drawn = []

    def draw(value):
        drawn.append(value)
        if value == 3:
            raise ValueError("no such depth")
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.imshow(np.arange(16).reshape(4, 4) % (value + 2))
        return fig

    control = widgets.IntSlider(value=0, min=0, max=3, description="depth")
    figure = FigureSlider(draw, control)
    first = bytes(figure.image.value)
    assert first.startswith(b"\x89PNG") and drawn == [0]
    control.value = 1
    control.value = 0
    control.value = 1
    assert drawn == [0, 1] and bytes(figure.image.value) != first  # cached, redrawn from the cache
    control.value = 3
    assert "ValueError: no such depth" in figure.status.value and not control.disabled
    data = figure._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "VBox" not in data["text/plain"] and "depth = 3" in data["text/plain"]
    assert data["image/jpeg"] and "application/vnd.jupyter.widget-view+json" in data
    assert plt.get_fignums() == []  # no figure left open to be drawn again at the end of the cell


def test_progress_in_a_notebook_ends_as_one_line(monkeypatch):
    from helpers import progress

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(repr(obj))

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, display_id=None: Handle())
    assert list(progress.progress(range(5), "steps")) == [0, 1, 2, 3, 4]
    assert shown == ["steps: 5 of 5 done"]
    for _ in progress.progress(range(5), "interrupted"):
        break
    assert shown[-1] == "interrupted: 0 of 5 done"
    assert list(progress.progress(iter("ab"), "no length", enabled=False)) == ["a", "b"]


def test_building_an_explorer_warns_about_nothing(tiny, photo, monkeypatch):
    """Any warning would land on stderr under a notebook cell."""
    import warnings

    from helpers import widgets

    monkeypatch.setattr(widgets, "_COLORBAR", [])  # draw the colour bar again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Explorer(tiny, photo, top_k=2, methods=("gradcam", "guided_gradcam"))

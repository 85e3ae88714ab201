"""Explorer widgets: compute the explanations once, then only redraw.

::

    from helpers.widgets import Explorer

    explorer = Explorer(classifier, photo, top_k=5, methods=("gradcam", "guided_gradcam"))
    explorer            # in Jupyter: sliders for the class and alpha, a method menu, the picture
    explorer.figure()   # the same pictures as a static Matplotlib figure (GitHub, nbviewer)

On construction (and on each new upload) the explorer calls
:func:`helpers.explain.explain_classes` once for the top-K classes and keeps the
results. Moving a slider or picking another method redraws from that cache
with NumPy (:func:`helpers.viz.overlay`, :func:`helpers.viz.gradient_image`):
no gradient is computed, so the widgets respond at once even for VGG16.
"""

from __future__ import annotations

import html
import io

import numpy as np

from . import viz
from .classifier import as_classifier
from .data import load_image, resize_for_model
from .errors import HelpersError
from .explain import HEATMAP, REGISTRY, explain_classes, get_method

CAM_COLORBAR_LABEL = "relevance (0 = none, 1 = strongest)"

__all__ = ["Explorer", "FigureSlider", "class_label", "picture_for", "static_figure"]


def class_label(explanation) -> str:
    """``"tiger cat (p=0.088)"``: a class name with its probability."""
    return f"{explanation.class_name} (p={explanation.probability:.3f})"


def picture_for(explanation, photo: np.ndarray, alpha: float = viz.DEFAULT_ALPHA) -> np.ndarray:
    """The RGB uint8 picture of one explanation at the model's input size.

    CAM methods are blended over ``photo`` with ``alpha`` (0 = photo only,
    1 = colours only); guided methods are shown as gradient pictures
    (:func:`helpers.viz.gradient_image`, grey = no gradient) and ignore ``alpha``.
    """
    if explanation.kind == HEATMAP:
        return viz.overlay(photo, explanation.map, alpha=alpha)
    return viz.to_uint8(viz.gradient_image(explanation.map) * 255.0)


def _png(picture: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


class Explorer:
    """Sliders over precomputed explanations of one photo (and, optionally, an upload button).

    Args:
        classifier: a :class:`~helpers.models.Classifier` (or a ``keras.Model``).
        image: RGB photo (H, W, 3), values 0-255.
        top_k: how many of the most likely classes the class slider offers.
        layer: conv layer for the CAMs; default ``classifier.last_conv_layer``.
        methods: one or more of ``"gradcam"``, ``"counterfactual"``,
            ``"guided_backprop"``, ``"guided_gradcam"``; with several, a menu picks one.
        alpha: starting heatmap opacity (0 = photo only, 1 = colours only).
        upload: add a button to explain the learner's own photo.

    Attributes:
        explanations: one dict per class rank, method name -> Explanation (the cache).
        photo: the current photo at the model's input size (float32, 0-255).
        picture: what the widget shows now, RGB uint8 (H, W, 3) at the model's input size.
        widget: the box to display (displaying the Explorer itself does the same).
        class_slider, alpha_slider, method_picker, upload_button, message: the controls.
    """

    def __init__(
        self,
        classifier,
        image,
        *,
        top_k: int = 5,
        layer: str | None = None,
        methods=("gradcam",),
        alpha: float = viz.DEFAULT_ALPHA,
        upload: bool = False,
    ):
        import ipywidgets as widgets

        self.classifier = as_classifier(classifier)
        self.methods = self._check_methods(methods)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
        self.top_k = top_k
        self.layer = layer
        self.computations = 0
        self.picture: np.ndarray | None = None
        self._compute(image)  # errors in the first photo are the caller's to see

        self.class_slider = widgets.IntSlider(
            value=0,
            min=0,
            max=len(self.explanations) - 1,
            step=1,
            description="Class rank",
            readout=True,
            continuous_update=True,
            style={"description_width": "initial"},
        )
        self.class_label = widgets.HTML()
        self.alpha_slider = widgets.FloatSlider(
            value=float(alpha),
            min=0.0,
            max=1.0,
            step=0.05,
            description="Alpha",
            readout_format=".2f",
            continuous_update=True,
            style={"description_width": "initial"},
        )
        self.method_picker = widgets.ToggleButtons(
            options=[(get_method(m).title, m) for m in self.methods],
            value=self.methods[0],
            description="Method",
            style={"description_width": "initial"},
        )
        self.image_widget = widgets.Image(format="png", layout=widgets.Layout(width="336px", height="336px"))
        # The overlay's colour scale; gradient pictures get a line saying what grey means instead.
        self.colorbar_widget = widgets.Image(
            value=_colorbar_png(), format="png", layout=widgets.Layout(width="336px", height="auto")
        )
        self.legend = widgets.HTML()
        self.message = widgets.HTML()
        self.upload_button = (
            widgets.FileUpload(accept="image/*", multiple=False, description="Your photo") if upload else None
        )

        rows = [widgets.HBox([self.class_slider, self.class_label])]
        if any(get_method(m).kind == HEATMAP for m in self.methods):
            rows.append(self.alpha_slider)  # gradient pictures ignore alpha: no dead slider
        if len(self.methods) > 1:
            rows.append(self.method_picker)
        if self.upload_button is not None:
            rows.append(self.upload_button)
        rows += [self.image_widget, self.colorbar_widget, self.legend, self.message]
        self.widget = widgets.VBox(rows)

        for control in (self.class_slider, self.alpha_slider, self.method_picker):
            control.observe(self._on_change, names="value")
        if self.upload_button is not None:
            self.upload_button.observe(self._on_upload, names="value")
        self.render()

    # ------------------------------------------------------------------ state

    @staticmethod
    def _check_methods(methods) -> tuple[str, ...]:
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        offered = tuple(name for name, m in REGISTRY.items() if m.one_pass)
        unknown = [m for m in methods if m not in offered]
        if not methods or unknown:
            raise ValueError(f"methods must be one or more of {offered}, not {methods!r}")
        return methods

    def _compute(self, image) -> None:
        """The one expensive step: every method for the top-K classes, from one pass."""
        explanations = explain_classes(self.classifier, image, top_k=self.top_k, layer=self.layer, methods=self.methods)
        # Only replace the cache once everything worked: a failure keeps the old photo.
        self.explanations = explanations
        self.photo = resize_for_model(np.asarray(image), self.classifier.input_size)
        self.computations += 1

    @property
    def rank(self) -> int:
        return int(self.class_slider.value)

    @property
    def method(self) -> str:
        return str(self.method_picker.value)

    @property
    def alpha(self) -> float:
        return float(self.alpha_slider.value)

    @property
    def current(self):
        """The Explanation shown now."""
        return self.explanations[self.rank][self.method]

    # ----------------------------------------------------------------- drawing

    def render(self) -> np.ndarray:
        """Redraw from the cache (NumPy only) and return the picture."""
        explanation = self.current
        self.picture = picture_for(explanation, self.photo, self.alpha)
        self.image_widget.value = _png(self.picture)
        self.class_label.value = f"<b>#{self.rank + 1}: {html.escape(class_label(explanation))}</b>"
        guided = explanation.kind != HEATMAP
        self.colorbar_widget.layout.display = "none" if guided else None
        self.legend.value = (
            "<small>grey = no gradient; colours: sign and size of the gradient per RGB channel</small>"
            if guided
            else "<small>heatmap over the photo: blue = no evidence, red = strongest</small>"
        )
        self.alpha_slider.disabled = guided
        self.alpha_slider.tooltip = (
            "not used: guided pictures are drawn on their own" if guided else "0 = photo only, 1 = heatmap only"
        )
        return self.picture

    def _on_change(self, change) -> None:
        self.render()

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return  # the value was cleared (by us, below)
        item = files[0]
        name = html.escape(str(item.get("name", "the file")))
        self.message.value = f"<i>Computing the explanations of <b>{name}</b> ...</i>"
        self.upload_button.disabled = True
        try:
            image = load_image(bytes(item["content"]))
            self._compute(image)
        except HelpersError as error:
            self.message.value = (
                f"<span style='color:#b00'>Could not use <b>{name}</b>: {html.escape(str(error))} "
                "The previous photo is still shown.</span>"
            )
        except Exception as error:  # a widget callback must never end in a traceback
            self.message.value = (
                f"<span style='color:#b00'>Could not explain <b>{name}</b> "
                f"({type(error).__name__}: {html.escape(str(error))}). "
                "The previous photo is still shown.</span>"
            )
        else:
            self.message.value = f"Showing <b>{name}</b>."
            self.class_slider.max = len(self.explanations) - 1
            self.class_slider.value = 0
            self.render()
        finally:
            # Clear the button so that choosing the same file again is seen as a change.
            self.upload_button.value = ()
            self.upload_button.disabled = False

    # ----------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):  # (data, metadata)
            data = dict(bundle[0])
            data["text/plain"] = self._text()
            return data, bundle[1]
        bundle = dict(bundle)
        bundle["text/plain"] = self._text()
        return bundle

    def _text(self) -> str:
        return (
            f"Explorer ({', '.join(get_method(m).title for m in self.methods)}; top {len(self.explanations)} "
            "classes). Run the notebook in Jupyter to use the sliders."
        )

    def __repr__(self) -> str:
        return f"<{self._text()}>"

    def figure(self, *, methods=None, ranks=None, alpha: float | None = None, size: float = 2.6):
        """The explorer's pictures as a static, labelled Matplotlib figure.

        One row per method, one column per class rank (default: all of them),
        after a first column with the photo as the model saw it. CAM rows get
        a labelled colour bar. Returns the figure (call ``plt.show()``).
        """
        import matplotlib.pyplot as plt
        from matplotlib import cm, colors

        methods = self.methods if methods is None else self._check_methods(methods)
        ranks = list(range(len(self.explanations))) if ranks is None else list(ranks)
        alpha = self.alpha if alpha is None else float(alpha)
        columns = len(ranks) + 1
        fig, axes = plt.subplots(
            len(methods),
            columns,
            figsize=(size * columns + 0.8, size * len(methods) + 0.6),
            squeeze=False,
            layout="constrained",
        )
        photo = viz.to_uint8(self.photo)
        for row, method in enumerate(methods):
            viz.show(axes[row, 0], photo, "photo (model input)")
            for column, rank in enumerate(ranks, start=1):
                explanation = self.explanations[rank][method]
                # the probability on a second line: long class names must not run into each other
                empty = ", empty: no positive evidence" if explanation.empty else ""
                title = f"#{rank + 1} {explanation.class_name}\n(p={explanation.probability:.3f}{empty})"
                viz.show(axes[row, column], picture_for(explanation, self.photo, alpha), title)
            axes[row, 0].text(
                -0.08,
                0.5,
                get_method(method).title,
                rotation=90,
                va="center",
                ha="right",
                transform=axes[row, 0].transAxes,
                fontsize=11,
                fontweight="bold",
            )
            if get_method(method).kind == HEATMAP:
                mappable = cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=viz.DEFAULT_CMAP)
                bar = fig.colorbar(mappable, ax=axes[row, -1], fraction=0.046, pad=0.04)
                bar.set_label(CAM_COLORBAR_LABEL)
        notes = []
        kinds = {get_method(m).kind for m in methods}
        if HEATMAP in kinds:
            notes.append(f"heatmaps blended over the photo with alpha={alpha:.2f}")
        if kinds - {HEATMAP}:
            notes.append("guided pictures: grey = no gradient")
        fig.suptitle(
            f"Top-{len(self.explanations)} classes of {self.classifier.title}"
            + (f" ({'; '.join(notes)})" if notes else ""),
            fontsize=11,
        )
        return fig


def static_figure(explorer: Explorer, **kwargs):
    """``explorer.figure(**kwargs)``: the default state drawn for readers without a kernel."""
    return explorer.figure(**kwargs)


def _figure_bytes(fig, fmt: str = "png", *, close: bool = True, **kwargs) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, **kwargs)
    if close:  # a figure left open would also be drawn inline at the end of the cell
        plt.close(fig)
    return buffer.getvalue()


_COLORBAR: list[bytes] = []


def _colorbar_png() -> bytes:
    """A horizontal [0, 1] colour bar, 336 px wide like the Explorer's picture (drawn once)."""
    if not _COLORBAR:
        import matplotlib.pyplot as plt
        from matplotlib import cm, colors

        fig = plt.figure(figsize=(4.2, 0.8), dpi=80)
        ax = fig.add_axes((0.04, 0.62, 0.92, 0.25))  # no layout engine: nothing to warn about
        mappable = cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=viz.DEFAULT_CMAP)
        fig.colorbar(mappable, cax=ax, orientation="horizontal").set_label(CAM_COLORBAR_LABEL, fontsize=9)
        ax.tick_params(labelsize=8)
        _COLORBAR.append(_figure_bytes(fig))
    return _COLORBAR[0]


class FigureSlider:
    """A control (slider, dropdown, ...) that redraws a Matplotlib figure, with a busy line.

    ::

        FigureSlider(draw_step, widgets.IntSlider(value=3, min=0, max=19, description="depth"))

    Args:
        draw: ``draw(value) -> matplotlib.figure.Figure`` for one value of the control.
        control: any ipywidgets value widget; its value at construction is drawn first.
        busy: what the line under the control says while a new value is drawn (the control is
            disabled meanwhile, so a slow redraw is visible and cannot pile up).

    Pictures are cached per value. In stored outputs (GitHub, a notebook opened before it
    runs) the widget is replaced by the first figure (JPEG) and one line of text, not by
    the widget's raw ``VBox(...)`` text.
    """

    def __init__(self, draw, control, *, busy: str = "Computing ..."):
        import ipywidgets as widgets

        self.draw, self.control, self.busy = draw, control, busy
        self.pictures: dict = {}
        first = draw(control.value)
        self.pictures[control.value] = _figure_bytes(first, close=False)
        self._fallback = _figure_bytes(first, "jpeg", dpi=80, pil_kwargs={"quality": 80})
        self.image = widgets.Image(value=self.pictures[control.value], format="png")
        self.status = widgets.HTML()
        self.widget = widgets.VBox([control, self.status, self.image])
        control.observe(self._on_change, names="value")

    def picture(self, value) -> bytes:
        """The PNG for one value of the control (drawn once, then cached)."""
        if value not in self.pictures:
            self.pictures[value] = _figure_bytes(self.draw(value))
        return self.pictures[value]

    def _on_change(self, change) -> None:
        self.status.value = f"<i>{html.escape(self.busy)}</i>"
        self.control.disabled = True
        try:
            self.image.value = self.picture(change["new"])
        except Exception as error:  # a widget callback must never end in a traceback
            self.status.value = (
                f"<span style='color:#b00'>{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>"
            )
        else:
            self.status.value = ""
        finally:
            self.control.disabled = False

    def _text(self) -> str:
        description = getattr(self.control, "description", "") or type(self.control).__name__
        return f"Interactive figure ({description} = {self.control.value!r}): run the notebook to change it."

    def __repr__(self) -> str:
        return f"<{self._text()}>"

    def _repr_mimebundle_(self, **kwargs):
        import base64

        bundle = self.widget._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data)
        data["text/plain"] = self._text()
        data["image/jpeg"] = base64.b64encode(self._fallback).decode("ascii")
        return (data, metadata) if isinstance(bundle, tuple) else data

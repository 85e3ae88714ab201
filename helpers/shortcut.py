"""A dataset with a planted shortcut, and a small VGG-style CNN to learn it (notebook 09).

The Grad-CAM paper (Selvaraju et al., section 6) found that a doctor/nurse classifier trained on a
gender-biased dataset looked at faces and hair instead of the stethoscope. This module rebuilds that
lesson in seconds, without a download::

    from helpers import shortcut

    train = shortcut.make_dataset(2000, marker_rate=0.95, seed=0)  # the marker mostly means "square"
    swapped = shortcut.make_dataset(500, swap=True, seed=2)         # the marker now means "disc"
    model = shortcut.build_small_cnn(seed=0)
    shortcut.train(model, train, epochs=6, seed=0)
    shortcut.accuracy(model, swapped)                               # near 0: the model reads the marker

The real difference between the classes is the shape (class 0: discs, class 1: squares) drawn on a
noisy, varied background. The marker is a small bright patch with a dark border in the top-left
corner, ``MARKER_BOX``; it is placed on ``marker_rate`` of class-1 images and on ``1 - marker_rate``
of class-0 images (``swap=True`` exchanges the classes). ``marker_rate=0.5`` makes it uninformative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Image side in pixels (square RGB images).
SIZE = 64
#: The marker's box ``(x0, y0, x1, y1)`` in image (and Grad-CAM map) pixels: ``image[y0:y1, x0:x1]``.
MARKER_BOX = (2, 2, 10, 10)
CLASS_NAMES = ("disc", "striped square")
#: Brightness step between a square's stripes (0-255): lower makes the real cue harder to learn.
STRIPE_CONTRAST = 60.0
#: Pixel centres (y, x), computed once: drawing is then a few vectorised comparisons per image.
_GRID = np.mgrid[0:SIZE, 0:SIZE] + 0.5


@dataclass(frozen=True)
class Dataset:
    """Images and what is known about each of them.

    Attributes:
        images: uint8 ``(n, SIZE, SIZE, 3)``, RGB.
        labels: int ``(n,)``: 0 = disc, 1 = square.
        has_marker: bool ``(n,)``: the corner marker is drawn on that image.
        marker_box: ``(x0, y0, x1, y1)`` of the marker, in pixels.
    """

    images: np.ndarray
    labels: np.ndarray
    has_marker: np.ndarray
    marker_box: tuple

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> Dataset:
        """The images at ``indices`` (an index array or a boolean mask), with their labels and markers."""
        return Dataset(self.images[indices], self.labels[indices], self.has_marker[indices], self.marker_box)

    def __iter__(self):
        # Unpacks as (images, labels, has_marker, marker_box).
        return iter((self.images, self.labels, self.has_marker, self.marker_box))


def _background(rng: np.random.Generator) -> np.ndarray:
    """A smooth two-colour gradient plus pixel noise: varied, so that colour alone says nothing."""
    start, end = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * _GRID[1] + np.sin(angle) * _GRID[0]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    image = start + t[..., None] * (end - start)
    return image + rng.normal(0, 12, image.shape)


def _draw_shape(image: np.ndarray, label: int, rng: np.random.Generator) -> None:
    """A plain disc (label 0) or a striped square (label 1) of random size, place and colours.

    Both are drawn away from the top-left marker. The stripes make the real cue a texture a small CNN
    learns within a few epochs; the marker is still simpler, so a biased training set wins.
    """
    radius = rng.uniform(9, 14)  # disc radius, or half the square's side
    cx, cy = rng.uniform(16, SIZE - 12, 2)
    ys, xs = _GRID
    colour = rng.uniform(0, 255, 3)
    if label == 0:
        image[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2] = colour
        return
    half = radius * 0.89  # about the disc's area
    square = (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    period, angle = rng.uniform(4, 7), rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])
    stripes = np.cos(2 * np.pi * (np.cos(angle) * xs + np.sin(angle) * ys) / period) > 0
    image[square & stripes] = colour
    # Low-contrast stripes: a cue the CNN finds, but more slowly than the stark marker.
    image[square & ~stripes] = colour + np.where(colour < 128, 1, -1) * STRIPE_CONTRAST


def _draw_marker(image: np.ndarray) -> None:
    """A white patch with a black border: it stands out on any background."""
    x0, y0, x1, y1 = MARKER_BOX
    image[y0:y1, x0:x1] = 0
    image[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = 255


def make_dataset(n: int, *, marker_rate: float = 0.95, swap: bool = False, seed: int = 0) -> Dataset:
    """Generate ``n`` images, half discs and half squares, with the corner marker planted as a shortcut.

    Args:
        n: number of images (labels alternate in a shuffled order: ``n // 2`` of class 0).
        marker_rate: share of class-1 images with the marker; class 0 gets it on ``1 - marker_rate``
            of its images. 0.95: the marker predicts class 1 in 95 % of cases; 0.5: it says nothing.
        swap: exchange the classes' roles (the marker goes with class 0): a test of the shortcut.
        seed: the same seed gives identical arrays.

    Returns:
        A :class:`Dataset` (unpacks as ``images, labels, has_marker, marker_box``).
    """
    if not 0.0 <= marker_rate <= 1.0:
        raise ValueError(f"marker_rate must lie in [0, 1], got {marker_rate}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    marked_class = 0 if swap else 1
    has_marker = np.zeros(n, bool)
    for label in (0, 1):
        # An exact count per class (not a coin per image), so that small sets keep the stated rate.
        where = np.flatnonzero(labels == label)
        rate = marker_rate if label == marked_class else 1.0 - marker_rate
        has_marker[rng.choice(where, round(rate * len(where)), replace=False)] = True
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        image = _background(rng)
        _draw_shape(image, int(labels[i]), rng)
        image = np.clip(image, 0, 255)
        if has_marker[i]:
            _draw_marker(image)
        images[i] = image.astype(np.uint8)
    return Dataset(images, labels.astype(np.int64), has_marker, MARKER_BOX)


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB 0-255 -> [0, 1] float32: the small CNN's input (pass it to ``wrap_keras_model``)."""
    return np.asarray(images, np.float32) / 255.0


def build_small_cnn(
    seed: int = 0, *, filters=(8, 16, 32), dense: int = 64, weight_decay: float = 1e-3, head: str = "max"
):
    """A small VGG-style CNN: conv blocks (conv + ReLU + max-pool), then a fully connected head.

    The head is VGG-16's in small, Dense + ReLU then Dense logits, on globally max-pooled features
    (``head="max"``, the default) or on the flattened grid (``head="flatten"``, VGG-16's kind of head).
    Either way the gradient at the last conv layer passes through the ReLU units that are active for
    this image, so Grad-CAM's channel weights alpha depend on the image (with a global-average-pooling
    head they are the same for every image). The default is max pooling because a Flatten head learns
    one weight per position: with the marker always in the same corner it can also learn "the corner
    looks plain" as evidence for the other class, evidence by absence that a Grad-CAM map (a sum of
    active feature maps) cannot show, and in our trials its maps found the marker for some seeds only.

    Args:
        seed: seeds Keras's initialisers (``keras.utils.set_random_seed``).
        filters: filters of each conv block; the last conv layer is ``"last_conv"``.
        dense: units of the hidden dense layer.
        weight_decay: L2 penalty on the hidden dense layer's kernel (keeps weights that never see an
            active input near zero instead of at their random initial values).
        head: ``"max"`` or ``"flatten"``.

    Returns:
        An uncompiled ``keras.Model``: input ``(SIZE, SIZE, 3)`` in [0, 1], output 2 logits.
    """
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((SIZE, SIZE, 3), name="image")]
    for block, count in enumerate(filters, start=1):
        last = block == len(filters)
        name = "last_conv" if last else f"block{block}_conv"
        layers += [
            keras.layers.Conv2D(count, 3, padding="same", activation="relu", name=name),
            keras.layers.MaxPooling2D(2, name=f"block{block}_pool"),
        ]
    if head == "flatten":
        layers.append(keras.layers.Flatten(name="flatten"))
    elif head == "max":
        layers.append(keras.layers.GlobalMaxPooling2D(name="global_max"))
    else:
        raise ValueError(f"head must be 'max' or 'flatten', got {head!r}")
    layers += [
        keras.layers.Dense(dense, activation="relu", name="fc", kernel_regularizer=keras.regularizers.L2(weight_decay)),
        keras.layers.Dense(len(CLASS_NAMES), name="logits"),
    ]
    return keras.Sequential(layers, name="small_cnn")


def _epoch_log(epochs: int):
    """A callback printing one short line per epoch: no timings, so a stored notebook compares equal."""
    import keras

    def show(epoch, logs):
        print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.2f}, training accuracy {logs['accuracy']:.2f}")

    return keras.callbacks.LambdaCallback(on_epoch_end=show)


def train(
    model,
    data: Dataset,
    *,
    epochs: int = 6,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int | str = "short",
    learning_rate: float = 2e-3,
):
    """Compile ``model`` (Adam, cross-entropy on logits) and fit it on ``data``, seeded.

    Args:
        model: from :func:`build_small_cnn`.
        data: the training :class:`Dataset`.
        epochs, batch_size, learning_rate: the usual.
        seed: seeds the shuffling (the result is reproducible on one machine; across CPUs the
            float sums may differ in the last bits).
        verbose: ``"short"`` prints one line per epoch with the loss and accuracy rounded to 2 decimals
            (no timings: the lines read well in a stored notebook); 0, 1, 2: Keras's own ``fit`` output.

    Returns:
        The Keras ``History``.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    short = verbose == "short"
    return model.fit(
        preprocess(data.images),
        data.labels,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0 if short else verbose,
        callbacks=[_epoch_log(epochs)] if short else None,
    )


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted class per image."""
    logits = model.predict(preprocess(images), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1)


def accuracy(model, data: Dataset) -> float:
    """Share of ``data`` classified right."""
    return float(np.mean(predict(model, data.images) == data.labels))


def marker_shares(
    classifier, data: Dataset, *, target: str = "predicted", method: str = "gradcam", only_marked: bool = True
) -> np.ndarray:
    """Share of each explanation's mass inside the marker's box (energy pointing game).

    Args:
        classifier: the wrapped model (``helpers.wrap_keras_model``).
        data: the images to explain.
        target: ``"label"`` explains the true class, ``"predicted"`` the model's top class.
        method: ``"gradcam"`` or ``"guided_gradcam"``.
        only_marked: score only the images that carry the marker (on the others the box is empty).

    Returns:
        float ``(m,)``, one share per scored image; a uniform map scores the box's area fraction.
    """
    from .explain import explain_classes
    from .metrics import pointing_game_energy

    guided = method != "gradcam"
    chosen = np.flatnonzero(data.has_marker) if only_marked else np.arange(len(data))
    shares = []
    for i in chosen:
        target_class = int(data.labels[i]) if target == "label" else None
        result = explain_classes(classifier, data.images[i], target_class, guided=guided)[0]
        shares.append(pointing_game_energy(result[method].map, data.marker_box))
    return np.asarray(shares)

"""Sanity checks for saliency maps: cascading randomisation of the model's weights.

Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS 2018) ask a
simple question: if the model's weights are replaced by random ones, does the
explanation change? A map that stays the same cannot be explaining what the
model *learned*. *Cascading* randomisation destroys the weights block by
block from the top (the logits) down to the first convolution, and compares
each map with the original one.

Randomisation never damages the loaded model:

* only the affected layers' weights are copied (NumPy), just before they
  are changed, so memory grows with the depth reached, not with the model;
* the copies are written back in a ``finally`` block, whatever happens;
* :func:`weights_fingerprint` (a SHA-256 of every weight) proves that the
  model is bit-for-bit the same afterwards.

The weights are changed in place with ``variable.assign``; the model is never
rebuilt, so the explanation engine's traced functions (which read the
variables at each call) see the random weights and need no re-tracing.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field

import numpy as np

from .graph.layers import block_name, flat_layers
from .models.variables import SpilledWeight, WeightBackup, assign_from_slices, read_in_slices
from .progress import progress as show_progress

#: What the cascade compares, per method: Spearman on |map|, Spearman on the signed map, SSIM.
SCORES = ("spearman_abs", "spearman", "ssim")
#: The methods the cascade recomputes at each step by default (any names of the
#: registry, :data:`helpers.explain.REGISTRY`, can be passed as ``methods``).
METHODS = ("gradcam", "guided_backprop", "guided_gradcam")


def weight_groups(model, by: str = "block") -> list[tuple[str, list]]:
    """The layers that hold weights, grouped, **top (output) first**.

    Args:
        model: a ``keras.Model`` (nested models are expanded).
        by: ``"block"``: consecutive layers with the same :func:`block_name`
            form one group (EfficientNet-Lite0: 19 groups, from
            ``predictions`` and ``top`` down to ``stem``; VGG16: 8 groups,
            ``predictions``, ``fc2``, ``fc1``, ``block5`` ... ``block1``);
            ``"layer"``: one group per layer, as in the paper's Inception v3
            figure.

    Returns:
        ``[(group name, [layers]), ...]``, the output layer's group first.
    """
    if by not in ("block", "layer"):
        raise ValueError(f"by must be 'block' or 'layer', not {by!r}")
    groups: list[tuple[str, list]] = []
    for layer in flat_layers(model):
        if not layer.weights:
            continue
        name = block_name(layer.name) if by == "block" else layer.name
        if groups and groups[-1][0] == name and by == "block":
            groups[-1][1].append(layer)
        else:
            groups.append((name, [layer]))
    return groups[::-1]


def weights_fingerprint(model) -> str:
    """SHA-256 of every weight of ``model`` (values, shapes and order): equal means bit-identical."""
    digest = hashlib.sha256()
    for layer in flat_layers(model):
        for variable in layer.weights:
            shape = tuple(variable.shape)
            digest.update(f"{layer.name}/{variable.name}{shape}{variable.dtype}".encode())
            # slice by slice: a whole copy of VGG16's fc1 would add 411 MB
            for _, _, part in read_in_slices(variable):
                digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def _random_like(value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seeded normal values with the same mean and standard deviation as ``value``."""
    return rng.normal(float(value.mean()), float(value.std()), size=value.shape).astype(value.dtype)


class Randomizer:
    """Randomises groups of layers one at a time and remembers how to undo it.

    Use it through :func:`randomized_layers` or :func:`cascading_randomization`,
    which always call :meth:`restore`.

    Re-initialisation: every *trainable* weight (kernels, biases, BatchNorm's
    gamma and beta) is replaced by seeded normal values with the same mean
    and standard deviation as the trained tensor, so each weight tensor keeps
    its scale (the activations may still grow, shrink or saturate: BatchNorm's
    statistics no longer match the random layer before it). BatchNorm's moving
    mean and variance (statistics of the data, not learned parameters; a
    random variance could be negative) are kept. Group ``g`` always gets the
    same random values for a given ``seed``, whatever the order of calls.

    The originals are kept by a :class:`~helpers.models.variables.WeightBackup`
    (``backup``): large weights (VGG16's fc1) go to a temporary file and are
    re-initialised slice by slice.
    """

    def __init__(self, model, seed: int = 0, by: str = "block"):
        self.model = model
        self.seed = int(seed)
        self.groups = weight_groups(model, by=by)
        self.depth = 0  # groups randomised so far, from the top
        self.backup = WeightBackup(prefix="helpers-sanity-")

    def randomize_to(self, depth: int) -> list[str]:
        """Randomise the top ``depth`` groups (deeper only; call :meth:`restore` to go back).

        Returns:
            The names of the groups randomised so far, top first.
        """
        if not isinstance(depth, (int, np.integer)) or not 0 <= depth <= len(self.groups):
            raise ValueError(f"depth must be an int from 0 to {len(self.groups)}, not {depth!r}")
        if depth < self.depth:
            raise ValueError(f"already randomised {self.depth} groups; restore() first to go back")
        for index in range(self.depth, depth):
            rng = np.random.default_rng([self.seed, index])
            for layer in self.groups[index][1]:
                for variable in layer.weights:
                    original = self.backup.save(variable)
                    if not variable.trainable:
                        continue
                    if isinstance(original, SpilledWeight):
                        assign_from_slices(
                            variable,
                            lambda a, b, _o=original, _rng=rng: (
                                _rng.standard_normal((b - a, *_o.shape[1:]), dtype=np.float32) * _o.std + _o.mean
                            ),
                        )
                    else:
                        variable.assign(_random_like(original, rng))
            self.depth = index + 1
        return [name for name, _ in self.groups[: self.depth]]

    @property
    def saved_bytes(self) -> int:
        """Memory held by the copies of the original weights (large ones live on disk)."""
        return self.backup.nbytes

    def restore(self) -> None:
        """Write every saved weight back (last saved first) and forget the copies."""
        self.backup.restore_all()
        self.depth = 0


@contextlib.contextmanager
def randomized_layers(model, n_from_top: int, seed: int = 0, *, by: str = "block"):
    """Randomise the top ``n_from_top`` weight groups of ``model`` inside a ``with`` block.

    Only the affected layers' weights are copied; they are restored in
    ``finally``, even if the block raises. See :class:`Randomizer` for how
    weights are re-initialised and :func:`weight_groups` for the groups.

    Example::

        with randomized_layers(classifier.model, 2) as names:   # ['predictions', 'top']
            cam = grad_cam(classifier, photo, "bull mastiff")

    Yields:
        The names of the randomised groups, top first.
    """
    randomizer = Randomizer(model, seed=seed, by=by)
    try:
        yield randomizer.randomize_to(n_from_top)
    finally:
        randomizer.restore()


@dataclass
class SanityStep:
    """One step of the cascade.

    Attributes:
        depth: how many groups are randomised (0: the trained model).
        group: the group randomised last ("none" at depth 0).
        maps: method -> the map (``Explanation.map``) for the fixed class.
        scores: method -> {score name: value} against depth 0 (see :data:`SCORES`).
        probability: the class's softmax probability under these weights.
        empty: the Grad-CAM map was all zero (no positive evidence).
    """

    depth: int
    group: str
    maps: dict
    scores: dict = field(default_factory=dict)
    probability: float = float("nan")
    empty: bool = False


def compare(original: np.ndarray, other: np.ndarray) -> dict:
    """The cascade's three scores of ``other`` against ``original`` (see :data:`SCORES`)."""
    from .metrics import spearman, ssim

    return {
        "spearman_abs": spearman(original, other, absolute=True),
        "spearman": spearman(original, other, absolute=False),
        "ssim": ssim(original, other, absolute=True),
    }


def cascading_randomization(
    classifier,
    image,
    target=None,
    *,
    layer=None,
    seed: int = 0,
    by: str = "block",
    max_depth: int | None = None,
    methods=METHODS,
    progress: bool = True,
) -> list[SanityStep]:
    """Adebayo et al.'s cascading randomisation, from the logits down.

    Step 0 explains ``target`` with the trained model; step ``d`` with the top
    ``d`` weight groups randomised (:func:`weight_groups`). Each step holds
    Grad-CAM, guided backprop and Guided Grad-CAM for the *same* class, and
    their scores against step 0. A progress bar (:func:`helpers.progress.progress`) shows the steps.

    The model is restored before this function returns (or raises): it
    returns a list rather than yielding steps, so that no half-consumed
    generator can leave random weights behind.

    Args:
        classifier: a Classifier (or keras.Model).
        image: RGB photo, any size, 0-255.
        target: class index or name; default the trained model's top-1 class.
        layer: Grad-CAM layer; default ``classifier.last_conv_layer``.
        seed: seed of the random weights.
        by: ``"block"`` or ``"layer"`` (see :func:`weight_groups`).
        max_depth: stop after this many groups (default: all of them).
        methods: registry names of the methods to check (default :data:`METHODS`); the
            one-pass ones share one traced pass per step, the others run on their own.

    Returns:
        ``[SanityStep, ...]``, depth 0 first.
    """
    from .classifier import as_classifier
    from .explain import explain_classes, get_method

    classifier = as_classifier(classifier)
    methods = tuple(methods)
    together = tuple(m for m in methods if get_method(m).one_pass)
    alone = tuple(m for m in methods if m not in together)
    if target is None:
        target = explain_classes(classifier, image, top_k=1, layer=layer, guided=False)[0]["gradcam"].class_index
    randomizer = Randomizer(classifier.model, seed=seed, by=by)
    depth_limit = len(randomizer.groups) if max_depth is None else min(int(max_depth), len(randomizer.groups))
    steps: list[SanityStep] = []
    try:
        for depth in show_progress(range(depth_limit + 1), "cascade steps (depth 0 = trained)", enabled=progress):
            randomizer.randomize_to(depth)
            # Grad-CAM always comes along: the step reports its probability and emptiness.
            result = explain_classes(
                classifier, image, [target], layer=layer, methods=tuple(dict.fromkeys(("gradcam", *together)))
            )[0]
            for method in alone:
                result[method] = get_method(method).function(classifier, image, target, layer=layer)
            maps = {method: result[method].map for method in methods}
            step = SanityStep(
                depth=depth,
                group=randomizer.groups[depth - 1][0] if depth else "none",
                maps=maps,
                probability=result["gradcam"].probability,
                empty=result["gradcam"].empty,
            )
            original = steps[0].maps if steps else maps
            step.scores = {method: compare(original[method], maps[method]) for method in methods}
            steps.append(step)
    finally:
        randomizer.restore()
    return steps


def score_table(steps: list[SanityStep], method: str, score: str) -> np.ndarray:
    """One score of one method along the cascade, depth 0 first."""
    return np.array([step.scores[method][score] for step in steps], np.float64)

"""Command line: ``python -m helpers predict|explain IMAGE ...``, a thin layer on the API."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from .errors import HelpersError

METHOD_NAMES = {
    "gradcam": "gradcam",
    "guided-backprop": "guided_backprop",
    "guided-gradcam": "guided_gradcam",
    "counterfactual": "counterfactual",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="top-K ImageNet predictions for an image")
    predict.add_argument("image", help="an image file, or a sample name (cat_dog, chelsea)")
    predict.add_argument("--model", default="auto", help="vgg16, efficientnet_lite0 or auto (default)")
    predict.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    predict.add_argument("--json", action="store_true", help="print a JSON list of {index, name, probability}")

    explain = commands.add_parser("explain", help="save an explanation map (.npy) and optionally a picture")
    explain.add_argument("image", help="an image file, or a sample name (cat_dog, chelsea)")
    explain.add_argument("--method", choices=sorted(METHOD_NAMES), default="gradcam")
    explain.add_argument("--class", dest="target", default=None,
                         help="class index or name (default: the top-1 class)")
    explain.add_argument("--layer", default=None, help="conv layer (default: the model's last conv layer)")
    explain.add_argument("--model", default="auto", help="vgg16, efficientnet_lite0 or auto (default)")
    explain.add_argument("--out", required=True, type=Path, help="where to save the float32 map (.npy)")
    explain.add_argument("--png", type=Path, default=None, help="also save the picture (overlay) as PNG")
    return parser


def _load(image_arg: str, model_name: str):
    from . import data
    from .models import load_model

    path = Path(image_arg)
    image = data.load_sample(image_arg) if not path.exists() and image_arg in data.SAMPLES else data.load_image(path)
    # The "Using <model>" line goes to stderr so that stdout stays parseable (--json).
    with contextlib.redirect_stdout(sys.stderr):
        classifier = load_model(model_name)
    return image, classifier


def _target(value: str | None):
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def predict(args) -> None:
    from .imagenet import decode_predictions
    from .explain import model_input

    image, classifier = _load(args.image, args.model)
    if not 1 <= args.top <= classifier.num_classes:
        raise HelpersError(f"--top must be between 1 and {classifier.num_classes}, not {args.top}.")
    resized, _ = model_input(classifier, image)
    predictions = decode_predictions(classifier.logits(resized[None])[0], top=args.top)
    if args.json:
        print(json.dumps([{"index": p.index, "name": p.name, "probability": round(p.probability, 6)} for p in predictions]))
        return
    for p in predictions:
        print(f"{p.index:4d}  {p.name:<30s} {p.probability:.4f}")


def explain(args) -> None:
    from . import viz
    from .explain import explain_classes

    image, classifier = _load(args.image, args.model)
    method = METHOD_NAMES[args.method]
    target = _target(args.target)
    result = explain_classes(
        classifier, image, None if target is None else [target], layer=args.layer,
        guided=method.startswith("guided"),
    )[0][method]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, result.map.astype(np.float32))
    note = " (empty: no positive evidence)" if result.empty else ""
    print(f"{args.method} for {result.class_index} {result.class_name} (p={result.probability:.4f}){note}: "
          f"{result.map.shape} float32 saved to {args.out}")
    if args.png is not None:
        from PIL import Image

        if result.map.ndim == 2:
            picture = viz.overlay(image, result.map)
        else:
            picture = viz.to_uint8(viz.gradient_image(result.map) * 255)
        args.png.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(args.png)
        print(f"picture saved to {args.png}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        {"predict": predict, "explain": explain}[args.command](args)
    except HelpersError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

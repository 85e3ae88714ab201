"""Command line: ``python -m helpers predict|explain IMAGE ...``, a thin layer on the API.

Every user error -- a bad argument, an unreadable image, a place that cannot be written -- is
one line on stderr (``error: ...``) and exit status 2, as argparse does for its own usage errors.
``explain`` writes nothing unless everything succeeds: it checks the output places and the
picture format first, computes, writes each file to a temporary file beside its target, and
only then renames them into place.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import HelpersError, UsageError


def _method_names() -> dict[str, str]:
    """``--method`` spelling -> registry name: every registered method, with hyphens."""
    from .explain import REGISTRY

    return {name.replace("_", "-"): name for name in REGISTRY}


# ASCII digits only: str.isdigit() also accepts '²' or '٣', which int() then refuses (or reads).
_INDEX = re.compile(r"-?[0-9]+")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="top-K ImageNet predictions for an image")
    predict.add_argument("image", help="an image file, or a sample name (cat_dog, chelsea)")
    predict.add_argument("--model", default="auto", help="vgg16, efficientnet_lite0 or auto (default)")
    predict.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    predict.add_argument("--json", action="store_true", help="print a JSON list of {index, name, probability}")

    explain = commands.add_parser("explain", help="save an explanation map (.npy) and optionally a picture")
    explain.add_argument("image", help="an image file, or a sample name (cat_dog, chelsea)")
    explain.add_argument("--method", choices=list(_method_names()), default="gradcam")
    explain.add_argument("--class", dest="target", default=None, help="class index or name (default: the top-1 class)")
    explain.add_argument("--layer", default=None, help="conv layer (default: the model's last conv layer)")
    explain.add_argument("--model", default="auto", help="vgg16, efficientnet_lite0 or auto (default)")
    explain.add_argument(
        "--out",
        required=True,
        type=Path,
        help="where to save the float32 map; '.npy' is appended when missing, as np.save does",
    )
    explain.add_argument(
        "--png",
        type=Path,
        default=None,
        help="also save the picture (overlay); the format follows the extension (.png, .jpg, ...)",
    )
    return parser


def _load_model(model_name: str):
    """The classifier; a seam that the tests replace with their already-loaded model."""
    from .models import load_model

    # The "Using <model>" line goes to stderr so that stdout stays parseable (--json).
    with contextlib.redirect_stdout(sys.stderr):
        return load_model(model_name)


def _load(image_arg: str, model_name: str):
    from . import data

    path = Path(image_arg)
    image = data.load_sample(image_arg) if not path.exists() and image_arg in data.SAMPLES else data.load_image(path)
    return image, _load_model(model_name)


def _target(value: str | None):
    if value is None:
        return None
    return int(value) if _INDEX.fullmatch(value.strip()) else value


def npy_path(out: Path) -> Path:
    """The file np.save really writes: it appends '.npy' when the name lacks it."""
    return out if out.suffix == ".npy" else out.with_name(out.name + ".npy")


def picture_format(png: Path) -> str:
    """Pillow's format for the picture's extension, checked before any computation."""
    from PIL import Image

    if not png.suffix:
        raise UsageError(f"--png {str(png)!r} has no extension, which picks the format: use .png or .jpg")
    name = Image.registered_extensions().get(png.suffix.lower())
    try:
        # A 1x1 trial: some registered formats cannot hold an RGB picture (.xbm) or lack a writer (.wmf).
        Image.new("RGB", (1, 1)).save(io.BytesIO(), format=name)
    except (OSError, ValueError, KeyError):
        raise UsageError(
            f"--png {str(png)!r}: Pillow cannot save an RGB picture as {png.suffix!r}; use .png or .jpg"
        ) from None
    return name


def check_writable(option: str, target: Path) -> None:
    """Refuse a target that cannot be created, without creating anything (the work comes first)."""
    if target.is_dir():
        raise UsageError(f"{option} {str(target)!r} is a folder; give a file name")
    folder = target.parent
    while not folder.exists():  # the missing folders will be made; the first existing one decides
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {option} {str(target)!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {option} {str(target)!r}: no permission to write in {str(folder)!r}")


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, appending each to ``created`` (even if a later one fails)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir()
        created.append(new)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _temporary_file(target: Path, save) -> Path:
    """Save through ``save(file)`` into a hidden temporary file beside ``target`` (same file system)."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have.
        os.chmod(name, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as file:
            save(file)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def write_all(outputs: dict[Path, object]) -> None:
    """Write every ``{target: save(file)}`` or none: temporary files first, renamed at the end.

    On failure the temporary files and the folders made for them are removed. (If the last
    rename fails after an earlier one succeeded, the earlier file is removed too.)
    """
    created, temporary, renamed = [], {}, []
    try:
        for target in outputs:
            _make_folders(target.parent, created)
        for target, save in outputs.items():
            temporary[target] = _temporary_file(target, save)
        for target, part in temporary.items():
            os.replace(part, target)
            renamed.append(target)
    except BaseException:
        for path in [*temporary.values(), *renamed]:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def predict(args) -> None:
    from .explain import model_input
    from .imagenet import decode_predictions

    image, classifier = _load(args.image, args.model)
    if not 1 <= args.top <= classifier.num_classes:
        raise HelpersError(f"--top must be between 1 and {classifier.num_classes}, not {args.top}.")
    resized, _ = model_input(classifier, image)
    predictions = decode_predictions(classifier.logits(resized[None])[0], top=args.top)
    if args.json:
        rows = [{"index": p.index, "name": p.name, "probability": round(p.probability, 6)} for p in predictions]
        print(json.dumps(rows))
        return
    for p in predictions:
        print(f"{p.index:4d}  {p.name:<30s} {p.probability:.4f}")


def _picture(image: np.ndarray, result) -> np.ndarray:
    from . import viz
    from .explain import HEATMAP

    if result.kind == HEATMAP:
        return viz.overlay(image, result.map)
    return viz.to_uint8(viz.gradient_image(result.map) * 255)


def _outputs(args, image, result, png_format: str | None) -> dict[Path, object]:
    """``{target: save(file)}`` for the map and, if asked, the picture."""
    from PIL import Image

    heatmap = result.map
    outputs = {npy_path(args.out): lambda file: np.save(file, heatmap.astype(np.float32))}
    if png_format is not None:
        picture = Image.fromarray(_picture(image, result))
        outputs[args.png] = lambda file: picture.save(file, format=png_format)
    return outputs


def explain(args) -> None:
    from .explain import get_method

    # Everything the user can get wrong about the outputs is refused before the (slow) work.
    out = npy_path(args.out)
    for target in dict.fromkeys([args.out, out]):  # '--out maps' must not be a folder either
        check_writable("--out", target)
    png_format = None if args.png is None else picture_format(args.png)
    if args.png is not None:
        check_writable("--png", args.png)
        if args.png.resolve() == out.resolve():
            raise UsageError("--out and --png name the same file")

    image, classifier = _load(args.image, args.model)
    method = get_method(_method_names()[args.method])
    result = method.function(classifier, image, _target(args.target), layer=args.layer)
    try:
        write_all(_outputs(args, image, result, png_format))
    except (OSError, ValueError, KeyError) as error:  # Pillow raises all three for a format it cannot write
        raise UsageError(f"nothing written: {error}") from error
    note = " (empty: no positive evidence)" if result.empty else ""
    print(
        f"{args.method} for {result.class_index} {result.class_name} (p={result.probability:.4f}){note}: "
        f"{result.map.shape} float32 saved to {out}"
    )
    if args.png is not None:
        print(f"picture saved to {args.png}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        {"predict": predict, "explain": explain}[args.command](args)
    except HelpersError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

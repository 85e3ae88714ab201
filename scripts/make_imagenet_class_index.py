"""Regenerate ``helpers/resources/imagenet_class_index.json`` from a timm wheel, offline.

Keras downloads this file from
https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json
(md5 c2c37ea517e94d9795004a39431a14cb).  Our build machines have no internet,
so we rebuild the very same bytes from two text files that ship inside the
``timm`` wheel.  The wheel is opened as a zip archive: timm is a *source of
data* here, never a dependency, and is not imported.

Rule that reproduces Keras's bytes exactly:

* index ``i`` (0..999) maps to ``[wnid, name]`` where ``wnid`` is line ``i`` of
  ``imagenet_synsets.txt``;
* ``name`` is the first lemma of that wnid in ``imagenet_synset_to_lemma.txt``
  (lemmas are separated by ``", "``) with spaces replaced by underscores;
* serialised with ``json.dumps`` defaults (separators ``", "`` and ``": "``,
  ASCII only), keys ``"0"`` .. ``"999"`` in numeric order, no trailing newline.

Usage::

    pip download --no-deps -d /tmp/timm timm
    python scripts/make_imagenet_class_index.py /tmp/timm/timm-*.whl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

EXPECTED_MD5 = "c2c37ea517e94d9795004a39431a14cb"
SYNSETS = "timm/data/_info/imagenet_synsets.txt"
LEMMAS = "timm/data/_info/imagenet_synset_to_lemma.txt"
# Package data of ``helpers`` (declared in pyproject.toml), so that a wheel carries it.
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "helpers" / "resources" / "imagenet_class_index.json"


def read_member(wheel: zipfile.ZipFile, name: str) -> str:
    """Read one text file from the wheel.

    Args:
        wheel: the opened wheel.
        name: path of the member inside the wheel.

    Returns:
        The decoded UTF-8 text.
    """
    return wheel.read(name).decode("utf-8")


def build_json(wheel_path: Path) -> bytes:
    """Build the class-index JSON bytes from a timm wheel.

    Args:
        wheel_path: path to a ``timm-*.whl`` file.

    Returns:
        The serialised JSON, byte-identical to Keras's download.
    """
    with zipfile.ZipFile(wheel_path) as wheel:
        wnids = read_member(wheel, SYNSETS).split()
        lemma_lines = read_member(wheel, LEMMAS).splitlines()
    lemmas = dict(line.split("\t", 1) for line in lemma_lines if line)
    if len(wnids) != 1000:
        raise ValueError(f"expected 1000 synsets in {SYNSETS}, found {len(wnids)}")
    index = {str(i): [wnid, lemmas[wnid].split(", ")[0].replace(" ", "_")] for i, wnid in enumerate(wnids)}
    return json.dumps(index).encode("ascii")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: write the file and check its md5.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status (0 on success).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to a timm-*.whl file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = parser.parse_args(argv)

    data = build_json(args.wheel)
    digest = hashlib.md5(data).hexdigest()
    # Refuse to write anything that is not Keras's exact file: a silent
    # difference would shift class names under every notebook.
    # (An explicit check rather than ``assert``, which ``python -O`` strips.)
    if digest != EXPECTED_MD5:
        raise SystemExit(f"md5 {digest} != {EXPECTED_MD5}: the timm data changed; nothing written")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes, md5 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

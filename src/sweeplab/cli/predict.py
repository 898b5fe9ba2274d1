"""`python predict.py RUN_DIR IMAGE...`: a trained run's predictions for image files (or folders, or globs).

One line per image: ``PATH  CLASS  PROBABILITY`` and the top 3; the images go through
the run's own preprocessing (channels, size, the training pool's normalisation).
``--export onnx|torchscript`` writes the model, normalisation included, for use
without sweeplab.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Sequence
from pathlib import Path

from sweeplab.cli.common import ArgumentParser, command
from sweeplab.config.resolvers import register_resolvers
from sweeplab.errors import UserInputError

BATCH = 256


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="predict.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders of them, or glob patterns")
    p.add_argument("--top", type=int, default=3, metavar="K", help="how many classes to list per image (default 3)")
    p.add_argument("--export", choices=("onnx", "torchscript"), help="write the model for use without sweeplab")
    p.add_argument("--out", metavar="PATH", help="where --export writes (default RUN_DIR/model.onnx or model.pt)")
    return p


def image_paths(patterns: Sequence[str], suffixes: Sequence[str]) -> list[Path]:
    """The image files named by ``patterns``: files, every image of a folder (sorted), glob matches."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
        elif path.is_file():
            found.append(path)
        elif matches := sorted(glob.glob(pattern, recursive=True)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            raise UserInputError(f"{pattern}: no such file, folder or matching files")
    return found


@command
def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_intermixed_args(argv)
    if args.top < 1:
        raise UserInputError(f"--top={args.top} is invalid: must be an integer >= 1")
    if not args.images and not args.export:
        raise UserInputError("name the images to predict (files, folders or globs), or --export onnx|torchscript")
    from sweeplab.runs.trained import IMAGE_SUFFIXES, load_run  # noqa: PLC0415 (torch: after the arguments)

    paths = image_paths(args.images, IMAGE_SUFFIXES)
    if args.images and not paths:
        raise UserInputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {' '.join(args.images)}")
    trained = load_run(args.run_dir)
    if args.export:
        print(f"wrote {trained.export(args.export, args.out)}")
    top = min(args.top, len(trained.classes))
    for start in range(0, len(paths), BATCH):
        chunk = paths[start : start + BATCH]
        probabilities = trained.predict(trained.load_images(chunk))
        values, indices = probabilities.topk(top, dim=1)
        for path, row_values, row_indices in zip(chunk, values.tolist(), indices.tolist(), strict=True):
            ranked = ", ".join(f"{trained.classes[i]} {p:.4f}" for i, p in zip(row_indices, row_values, strict=True))
            print(f"{path}  {trained.classes[row_indices[0]]}  {row_values[0]:.4f}  (top {top}: {ranked})")


def cli() -> None:
    register_resolvers()
    main()

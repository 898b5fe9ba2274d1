"""`python visualize.py RUN_DIR`: pictures of what a trained conv net learned (see README.md)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sweeplab.cli.common import ArgumentParser, command
from sweeplab.config.resolvers import register_resolvers
from sweeplab.runs.folder import require_run_config


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="visualize.py",
        description="Write kernels.png (the first conv layer's filters), feature_maps.png (each conv layer's "
        "outputs for one test image) and fixed_kernels.png (edge, blur and sharpen kernels on the "
        "same image) from a run folder's config and best checkpoint.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config changes, e.g. data.data_dir=../shared/data/mnist-10k if the data moved",
    )
    p.add_argument("--image", type=int, default=0, metavar="INDEX", help="which test image (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the images (default RUN_DIR)")
    return p


@command
def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_intermixed_args(argv)
    require_run_config(args.run_dir)  # a wrong path is refused before torch is imported (seconds)
    from sweeplab.reports.visualize import visualize_run  # noqa: PLC0415 (torch: after the arguments are checked)

    result = visualize_run(args.run_dir, image_index=args.image, out_dir=args.out, overrides=args.overrides)
    for path in result.files:
        print(path)


def cli() -> None:
    register_resolvers()
    main()

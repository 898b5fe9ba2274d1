"""`python compare.py PATH...`: one table comparing the runs in or below PATH (see README.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sweeplab.cli.common import ArgumentParser, command
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.reports.diff import DIFF_FORMATS, diff_runs, render_diff, sides
from sweeplab.reports.run_records import load_runs
from sweeplab.reports.runs_table import SORTABLE_METRICS, build_table, parse_filter
from sweeplab.reports.table_render import FORMATS, render
from sweeplab.runs.folder import CV_REPORT_JSON
from sweeplab.stats import CONFIDENCE, percent


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="compare.py",
        description="Compare runs: the hyperparameters that differ, then the metrics, best first. "
        "PATHs are run folders, multirun roots or sweep folders (searched for results.json).",
    )
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--metric", default="test_acc", help=f"sort by this, best first: {', '.join(SORTABLE_METRICS)}")
    p.add_argument(
        "--format",
        default=None,
        help=f"output format: {', '.join(FORMATS)} (default md); with --diff {', '.join(DIFF_FORMATS)} (default text)",
    )
    p.add_argument("--top", type=int, default=None, metavar="N", help="show only the best N rows")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs whose KEY (hyperparameter, config group, status, dataset...) is VALUE; repeatable",
    )
    p.add_argument(
        "--where",
        default=None,
        metavar="QUERY",
        help='keep the runs QUERY matches: "model=lenet and optimizer.lr<0.01 and test_acc>0.98" '
        "(config keys, metrics, status, tags; = != < <= > >=, in [a, b]; and, or, parentheses)",
    )
    p.add_argument(
        "--group-seeds",
        action="store_true",
        help="one row per config that differs only in seed: mean ± std over its seeds, their number; "
        f"below the table each group's {percent(CONFIDENCE)} interval and Welch's t-test of the "
        "best two".replace("%", "%%"),
    )
    p.add_argument(
        "--plot",
        default=None,
        metavar="FILE.png",
        type=png_path,
        help="also draw the rows' validation accuracy and loss per epoch on shared axes into FILE.png "
        "(a seed group: its mean, with a band of one standard deviation)",
    )
    p.add_argument(
        "--diff",
        nargs=2,
        default=None,
        metavar=("A", "B"),
        help="two runs side by side: config, code, data, packages, machine and metrics that differ. "
        "A and B are run folders (a folder of several runs is a group); with PATHs given, "
        '--where queries over their runs: --diff "model=lenet" "model=mlp" (groups get '
        "--group-seeds' test of --metric)",
    )
    return p


def png_path(text: str) -> Path:
    if Path(text).suffix.lower() != ".png":
        raise ConfigError("--plot", text, "must name a .png file, e.g. --plot curves.png")
    return Path(text)


def _paired_cv_comparison(paths: Sequence[str]) -> str | None:
    """The paired test of two cross-validation runs, when both paths hold a ``cv_report.json``."""
    if len(paths) != 2 or not all((Path(p) / CV_REPORT_JSON).is_file() for p in paths):
        return None
    from sweeplab.cv.paired import format_paired_comparison  # noqa: PLC0415 (only for two CV runs)

    return format_paired_comparison(Path(paths[0]), Path(paths[1]))


@command
def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_intermixed_args(argv)
    if args.diff is not None:
        _print_diff(args)
        return
    if not args.paths:
        raise UserInputError("give at least one PATH: a run folder, a multirun root or a sweep folder")
    args.format = args.format or "md"
    paired = _paired_cv_comparison(args.paths)
    if paired is not None:
        print(paired)
        return
    filters = [parse_filter(text) for text in args.filter]
    table = build_table(
        load_runs(args.paths),
        metric=args.metric,
        top=args.top,
        filters=filters,
        where=args.where,
        group_seeds=args.group_seeds,
    )
    text = render(table, args.format)
    sys.stdout.write(text)
    if table.comparison and args.format == "md":
        print("\n" + "\n".join(f"- {line}" for line in table.comparison))
    for note in table.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.plot is not None:
        from sweeplab.reports.overlays import write_overlays  # noqa: PLC0415 (matplotlib only when asked)

        path, drawn = write_overlays(table.labelled_runs, args.plot, title=" ".join(args.paths))
        missing = len(table.labelled_runs) - drawn
        print(
            f"wrote {path}: {drawn} curves" + (f" ({missing} rows logged no epoch)" if missing else ""), file=sys.stderr
        )


def _print_diff(args: argparse.Namespace) -> None:
    """``--diff A B``: the two sides compared; each missing or damaged record file named on stderr."""
    fmt = args.format or "text"
    if fmt not in DIFF_FORMATS:  # before any file is read
        raise ConfigError("--format", fmt, f"with --diff one of {', '.join(DIFF_FORMATS)}")
    if args.metric not in SORTABLE_METRICS:
        raise ConfigError("--metric", args.metric, f"one of {', '.join(SORTABLE_METRICS)}")
    diff = diff_runs(*sides(args.paths, *args.diff), metric=args.metric)
    sys.stdout.write(render_diff(diff, fmt))
    for problem in diff.problems:
        print(f"note: {problem}", file=sys.stderr)


def cli() -> None:
    main()

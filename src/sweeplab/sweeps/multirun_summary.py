"""``summary.csv`` and ``summary.md`` at the root of a ``train.py -m`` multirun.

A Hydra callback (``hydra.callbacks.multirun_summary`` in ``conf/train.yaml``):
when every job of a grid has ended, it reads each job's ``.hydra/overrides.yaml``
and ``results.json`` (``cv_report.json`` for cross-validated jobs, whose metrics
are fold means) and writes one row per run, with the overridden values and the
run's metrics, best first (highest ``best_val_acc``; runs without one last).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeplab.runs.files import read_json, write_text_atomic
from sweeplab.runs.fit import RESULTS_FILE

log = logging.getLogger(__name__)

SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"
METRICS = ("status", "best_val_acc", "best_val_loss", "test_acc", "test_loss", "best_epoch", "epochs_run", "duration_s")


class MultirunSummary(Callback):
    """Write the summary of a multirun when it ends.

    Args:
        sort_by: the ``results.json`` key that ranks the runs.
        direction: ``maximize`` (best first = highest) or ``minimize``.
    """

    def __init__(self, sort_by: str = "best_val_acc", direction: str = "maximize") -> None:
        self.sort_by, self.direction = sort_by, direction

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(str(config.hydra.sweep.dir))
        rows, override_keys = collect_rows(root)
        if not rows:
            log.warning("no runs found under %s: no summary written", root)
            return
        rows = rank_rows(rows, self.sort_by, self.direction)
        columns = ["job", *override_keys, *METRICS, "dir"]
        write_text_atomic(root / SUMMARY_CSV, render_csv(rows, columns))
        write_text_atomic(root / SUMMARY_MD, render_markdown(rows, columns, root, self.sort_by))
        log.info("summary of %d runs: %s", len(rows), root / SUMMARY_MD)


def collect_rows(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per job folder under ``root`` (its overrides and results), and the override keys in order."""
    rows, keys = [], []
    for overrides_file in sorted(root.rglob(".hydra/overrides.yaml"), key=_job_order):
        run_dir = overrides_file.parent.parent
        overrides = parse_overrides(yaml.safe_load(overrides_file.read_text()) or [])
        keys += [key for key in overrides if key not in keys]
        results = run_results(run_dir)
        row = {"job": str(run_dir.relative_to(root)), **overrides, "dir": str(run_dir)}
        row.update({metric: results.get(metric) for metric in METRICS})
        rows.append(row)
    return rows, keys


def run_results(run_dir: Path) -> dict[str, Any]:
    """A run's ``results.json``, a cross-validated run's ``cv_report.json``, or ``status: missing``."""
    from sweeplab.cv.report import REPORT_JSON  # noqa: PLC0415 (every train.py run loads this callback: stay light)

    for name in (RESULTS_FILE, REPORT_JSON):
        if (run_dir / name).is_file():
            return read_json(run_dir / name)
    return {"status": "missing"}


def _job_order(overrides_file: Path) -> tuple:
    """Job folders 0, 1, 2, ..., 10 in numeric order."""
    name = overrides_file.parent.parent.name
    return (0, int(name), "") if name.isdigit() else (1, 0, str(overrides_file))


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """``["optimizer.lr=0.01"]`` -> ``{"optimizer.lr": "0.01"}``, read with Hydra's own parser."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {item.key_or_group: item.get_value_element_as_str() for item in parsed if not item.is_delete()}


def rank_rows(rows: list[dict[str, Any]], sort_by: str, direction: str) -> list[dict[str, Any]]:
    """Best first; rows without the metric (failed, missing) keep their job order at the end."""
    def has_score(row: dict[str, Any]) -> bool:
        return isinstance(row.get(sort_by), (int, float))

    scored = [row for row in rows if has_score(row)]
    unscored = [row for row in rows if not has_score(row)]
    scored.sort(key=lambda row: row[sort_by], reverse=direction == "maximize")
    return scored + unscored


def render_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: ("" if row.get(key) is None else row[key]) for key in columns} for row in rows)
    return buffer.getvalue()


def render_markdown(rows: list[dict[str, Any]], columns: list[str], root: Path, sort_by: str) -> str:
    shown = [column for column in columns if column != "dir"]
    lines = [f"# Multirun {root}", "", f"{len(rows)} runs, best {sort_by} first.", "",
             "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in shown) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)

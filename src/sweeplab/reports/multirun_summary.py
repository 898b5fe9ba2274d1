"""``summary.csv`` and ``summary.md`` at the root of a ``train.py -m`` multirun: compare.py's table.

A Hydra callback (``hydra.callbacks.multirun_summary`` in ``conf/train.yaml``): when
every job of a grid has ended, it reads the jobs' run folders as ``compare.py ROOT``
does (a cross-validated job is one row of fold means) and writes the same table, best
``sort_by`` first, the hyperparameters that differ between the jobs as columns. A job
that failed or wrote nothing is a row with its status.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeplab.errors import UserInputError
from sweeplab.metrics import metric
from sweeplab.reports.run_records import load_runs
from sweeplab.reports.runs_table import RunsTable, build_table
from sweeplab.reports.table_render import render_csv, render_markdown
from sweeplab.files import write_text_atomic

log = logging.getLogger(__name__)

SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"


class MultirunSummary(Callback):
    """Write the summary of a multirun when it ends.

    Args:
        sort_by: the metric that ranks the runs (its direction: :mod:`sweeplab.metrics`).
    """

    def __init__(self, sort_by: str = "best_val_acc") -> None:
        self.sort_by = sort_by

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_summary(Path(str(config.hydra.sweep.dir)), self.sort_by)


def write_summary(root: Path, sort_by: str = "best_val_acc") -> RunsTable | None:
    """Write ``summary.csv`` and ``summary.md`` for the runs below ``root``; None when there are none."""
    try:
        table = build_table(load_runs([root]), metric=sort_by)
    except UserInputError as error:
        log.warning("no summary written: %s", error)
        return None
    write_text_atomic(root / SUMMARY_CSV, render_csv(table))
    heading = (f"# Multirun {root}\n\n{len(table.rows)} runs, best {sort_by} first "
               f"({metric(sort_by).direction}d).\n\n")
    notes = "".join(f"\n- {note}" for note in table.notes)
    write_text_atomic(root / SUMMARY_MD, heading + render_markdown(table) + (f"\nNotes:{notes}\n" if notes else ""))
    log.info("summary of %d runs: %s", len(table.rows), root / SUMMARY_MD)
    return table

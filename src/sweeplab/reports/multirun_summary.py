"""``summary.csv`` and ``summary.md`` at the root of a ``train.py -m`` multirun: compare.py's table.

A Hydra callback (``hydra.callbacks.multirun_summary`` in ``conf/train.yaml``): when
every job of a grid has ended, it reads the jobs' run folders as ``compare.py ROOT``
does (a cross-validated job is one row of fold means) and writes the same table, best
``sort_by`` first, the hyperparameters that differ between the jobs as columns. A job
that failed or wrote nothing is a row with its status. A grid that was stopped writes it too
(``train.py`` does, :func:`write_summary` with ``not_run``): the jobs it never started are rows
with status ``not run`` and their overrides.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeplab.errors import UserInputError
from sweeplab.files import write_text_atomic
from sweeplab.metrics import metric
from sweeplab.reports.next_steps import grid_next_steps
from sweeplab.reports.run_records import RunRecord, load_runs
from sweeplab.reports.runs_table import RunsTable, build_table
from sweeplab.reports.table_render import render_csv, render_markdown

log = logging.getLogger(__name__)

SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"
NOT_RUN = "not run"  # the status of a stopped grid's jobs that never started


class MultirunSummary(Callback):
    """Write the summary of a multirun when it ends.

    Args:
        sort_by: the metric that ranks the runs (its direction: :mod:`sweeplab.metrics`).
    """

    def __init__(self, sort_by: str = "best_val_acc") -> None:
        self.sort_by = sort_by

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if write_summary(Path(str(config.hydra.sweep.dir)), self.sort_by) is not None:
            print(grid_next_steps(Path(str(config.hydra.sweep.dir))))


def write_summary(
    root: Path, sort_by: str = "best_val_acc", not_run: dict[int, list[str]] | None = None
) -> RunsTable | None:
    """Write ``summary.csv`` and ``summary.md`` for the runs below ``root``; None when there are none.

    ``not_run``: the jobs of a stopped grid that never started (job number -> its overrides), listed as rows.
    """
    try:
        runs = load_runs([root])
        table = build_table(runs + not_run_records(root, runs, not_run or {}), metric=sort_by)
    except UserInputError as error:
        log.warning("no summary written: %s", error)
        return None
    write_text_atomic(root / SUMMARY_CSV, render_csv(table))
    heading = f"# Multirun {root}\n\n{len(table.rows)} runs, best {sort_by} first ({metric(sort_by).direction}d).\n\n"
    notes = "".join(f"\n- {note}" for note in table.notes)
    write_text_atomic(root / SUMMARY_MD, heading + render_markdown(table) + (f"\nNotes:{notes}\n" if notes else ""))
    log.info("summary of %d runs: %s", len(table.rows), root / SUMMARY_MD)
    return table


def not_run_records(root: Path, runs: list[RunRecord], not_run: dict[int, list[str]]) -> list[RunRecord]:
    """Rows for jobs that never started: a job that ran, with this job's overrides in place of its own (so only
    the grid's swept keys differ between the rows)."""
    base = runs[0].hparams if runs else {}
    return [
        RunRecord(
            root / str(number), NOT_RUN, runs[0].dataset if runs else None, {**base, **_override_values(overrides)}
        )
        for number, overrides in sorted(not_run.items())
    ]


def _override_values(overrides: list[str]) -> dict[str, Any]:
    """``["seed=3", "model=lenet"]`` -> ``{"seed": 3, "model": "lenet"}`` (values read as YAML, as Hydra reads them)."""
    values = {}
    for override in overrides:
        key, _, text = override.partition("=")
        try:
            values[key.lstrip("+~")] = yaml.safe_load(text)
        except yaml.YAMLError:
            values[key.lstrip("+~")] = text
    return values

"""The comparison table of many runs: which hyperparameters differ, and how each run did.

Rows are runs (or, with ``group_seeds``, groups of runs that differ only in their
seed, with mean ± standard deviation). Columns are the hyperparameters that differ
between the rows shown, then the metrics. Failed runs and runs of other datasets
stay in the table, marked by their ``status`` and ``dataset`` columns.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.errors import ConfigError
from sweeplab.metrics import RESULT_METRICS
from sweeplab.metrics import metric as metric_named
from sweeplab.reports.query import Condition, refuse_unknown_keys, select
from sweeplab.reports.run_records import RunRecord
from sweeplab.reports.seed_groups import Group, compare_best_two
from sweeplab.runs.hparams import LABELS
from sweeplab.runs.results import COMPLETED
from sweeplab.stats import MeanStd  # re-exported: tables and their renderers name it here

METRIC_COLUMNS = ("test_acc", "best_val_acc", "epochs_run", "duration_s")
SORTABLE_METRICS = RESULT_METRICS
SEED_KEY = "seed"


@dataclass
class RunsTable:
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # for people: what was cut, what does not compare
    comparison: list[str] = field(default_factory=list)  # group_seeds: each group's interval, the best two tested
    labelled_runs: list[tuple[str, list[RunRecord]]] = field(default_factory=list)  # each row's name and runs


@dataclass
class _Entry:
    """One future row: a run, or a group of runs that differ only in their seed."""

    records: list[RunRecord]

    @property
    def first(self) -> RunRecord:
        return self.records[0]

    def metric(self, key: str) -> float | MeanStd | None:
        """The run's value; for a group, mean ± std over its completed runs."""
        if len(self.records) == 1:
            return _number(self.first.results.get(key))
        values = [_number(r.results.get(key)) for r in self.records if r.status == COMPLETED]
        return MeanStd.of([float(v) for v in values if v is not None])

    def status(self) -> str:
        counts = Counter(r.status for r in self.records)
        if len(counts) == 1:
            return self.first.status
        return ", ".join(f"{n} {status}" for status, n in counts.most_common())


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- filters ---------------------------------------------------------------------------


def parse_filter(text: str) -> tuple[str, str]:
    """``"optimizer.lr=0.01"`` -> ``("optimizer.lr", "0.01")``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--filter", text, "KEY=VALUE, e.g. optimizer.lr=0.01 or model=lenet or status=failed")
    return key.strip(), value.strip()


def apply_filters(records: Sequence[RunRecord], filters: Sequence[tuple[str, str]]) -> list[RunRecord]:
    """The runs matching every ``(key, value)`` (as ``--where "KEY=VALUE and ..."``); a key no run has is refused."""
    for key, wanted in filters:
        refuse_unknown_keys(records, [key], "--filter", f"{key}={wanted}")
    conditions = [Condition(key, "=", (wanted,)) for key, wanted in filters]
    return [record for record in records if all(condition.matches(record) for condition in conditions)]


# --- columns ---------------------------------------------------------------------------


_MISSING = object()


def differing_hparams(records: Sequence[RunRecord], ignore: Sequence[str] = ()) -> list[str]:
    """Hyperparameters whose values are not the same in all ``records`` (absent counts as a value;
    runs whose config could not be read at all are left out of the comparison)."""
    records = [r for r in records if r.hparams] or list(records)
    keys = sorted({key for record in records for key in record.hparams} - set(ignore))
    return [
        key
        for key in keys
        if len({json.dumps(r.hparams.get(key, _MISSING), sort_keys=True, default=repr) for r in records}) > 1
    ]


def run_names(paths: Sequence[Path]) -> dict[Path, str]:
    """Short names for run folders: their paths below the folder they all share."""
    if len(paths) == 1:
        return {paths[0]: paths[0].name}
    root = Path(os.path.commonpath([p.resolve() for p in paths]))
    return {p: (os.path.relpath(p.resolve(), root) if p.resolve() != root else p.name) for p in paths}


# --- the table -------------------------------------------------------------------------


def _group_by_seed(records: Sequence[RunRecord]) -> list[_Entry]:
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        config = {k: v for k, v in record.hparams.items() if k != SEED_KEY and k not in LABELS}
        key = json.dumps([record.dataset, config], sort_keys=True, default=repr) if config else str(record.path)
        groups.setdefault(key, []).append(record)
    return [_Entry(group) for group in groups.values()]


def _sort_value(value: float | MeanStd | None) -> float | None:
    number = value.mean if isinstance(value, MeanStd) else value
    return None if number is None or (isinstance(number, float) and math.isnan(number)) else float(number)


def _sorted(entries: list[_Entry], metric: str) -> list[_Entry]:
    """Best first by ``metric``; entries without a value go last, in path order."""
    sign = -1.0 if metric_named(metric).higher_is_better else 1.0

    def key(entry: _Entry):
        value = _sort_value(entry.metric(metric))
        return (value is None, 0.0 if value is None else sign * value, str(entry.first.path))

    return sorted(entries, key=key)


def build_table(
    records: Sequence[RunRecord],
    *,
    metric: str = "test_acc",
    top: int | None = None,
    filters: Sequence[tuple[str, str]] = (),
    where: str | None = None,
    group_seeds: bool = False,
) -> RunsTable:
    """The comparison of ``records``: filtered (``filters``, the ``where`` query), grouped by seed if asked,
    sorted best first, cut to ``top``."""
    if metric not in SORTABLE_METRICS:
        raise ConfigError("--metric", metric, f"one of {', '.join(SORTABLE_METRICS)}")
    if top is not None and top < 1:
        raise ConfigError("--top", top, "a positive number of rows")
    chosen = apply_filters(records, filters)
    if where is not None:
        chosen = select(chosen, where)
    entries = _group_by_seed(chosen) if group_seeds else [_Entry([r]) for r in chosen]
    ranked = _sorted(entries, metric)
    shown = ranked[:top] if top else ranked
    notes = _notes(chosen, len(records), ranked, shown, metric)

    representatives = [entry.first for entry in shown]
    label_columns = [key for key in LABELS if any(r.hparams.get(key) for r in representatives)]
    hparam_columns = differing_hparams(representatives, ignore=((SEED_KEY,) if group_seeds else ()) + LABELS)
    datasets = {r.dataset for entry in shown for r in entry.records if r.dataset}
    columns = ["run", "status"] + (["dataset"] if len(datasets) > 1 else []) + (["seeds"] if group_seeds else [])
    columns += (
        hparam_columns + list(METRIC_COLUMNS) + ([metric] if metric not in METRIC_COLUMNS else []) + label_columns
    )
    names = run_names([r.path for entry in shown for r in entry.records]) if shown else {}
    rows = []
    for entry in shown:
        row: dict[str, Any] = {
            "run": ", ".join(names[r.path] for r in entry.records),
            "status": entry.status(),
            "dataset": entry.first.dataset,
            "seeds": len(entry.records),
            "path": [str(r.path) for r in entry.records] if group_seeds else str(entry.first.path),
        }
        row.update({key: entry.first.hparams.get(key) for key in hparam_columns + label_columns})
        row.update({key: entry.metric(key) for key in columns if key in SORTABLE_METRICS})
        rows.append(row)
    labelled = [
        (_label(entry, hparam_columns, row["run"]), entry.records) for entry, row in zip(shown, rows, strict=True)
    ]
    comparison = (
        compare_best_two(
            [_seed_group(label, entry, metric) for (label, _), entry in zip(labelled, shown, strict=True)], metric
        )
        if group_seeds
        else []
    )
    return RunsTable(columns, rows, notes, comparison, labelled)


def _label(entry: _Entry, hparam_columns: Sequence[str], run_name: str) -> str:
    """What tells the row apart: its config groups (``model=lenet``) when they differ, else its hyperparameters."""
    groups = [key for key in hparam_columns if "." not in key]
    return " ".join(f"{key}={entry.first.hparams.get(key)}" for key in groups or hparam_columns) or run_name


def _seed_group(label: str, entry: _Entry, metric: str) -> Group:
    """The completed runs' values of ``metric``."""
    values = [_number(r.results.get(metric)) for r in entry.records if r.status == COMPLETED]
    return Group(label, tuple(float(v) for v in values if v is not None))


def _notes(chosen: list[RunRecord], total: int, ranked: list[_Entry], shown: list[_Entry], metric: str) -> list[str]:
    notes = []
    if len(chosen) < total:
        notes.append(f"{len(chosen)} of {total} runs match the filters")
    if len(shown) < len(ranked):
        notes.append(f"showing the best {len(shown)} of {len(ranked)} rows by {metric}")
    not_completed = [r for r in chosen if r.status != COMPLETED]
    if not_completed:
        statuses = Counter(r.status for r in not_completed)
        notes.append(
            f"{len(not_completed)} of {len(chosen)} runs did not complete ("
            + ", ".join(f"{n} {s}" for s, n in statuses.most_common())
            + "): see their status column"
        )
    datasets = sorted({str(r.dataset) for r in chosen if r.dataset})
    if len(datasets) > 1:
        notes.append(f"runs on {len(datasets)} datasets ({', '.join(datasets)}): their metrics do not compare")
    return notes

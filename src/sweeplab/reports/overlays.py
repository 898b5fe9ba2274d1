"""``compare.py PATHS --plot curves.png``: the chosen runs' validation curves on shared axes.

One colour per row of the table: a run's line, or for ``--group-seeds`` the mean over
the group's seeds with a band of ± one standard deviation. Each line is labelled by the
hyperparameters that tell the rows apart (the table's columns), so the legend reads
``model=lenet optimizer=adam``, not a folder name.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sweeplab.errors import ConfigError
from sweeplab.metrics import VAL_ACC, VAL_LOSS
from sweeplab.reports.figures import new_figure, save_png
from sweeplab.reports.run_records import RunRecord

CURVES = (VAL_ACC, VAL_LOSS)  # one panel each
MAX_LEGEND_CHARS = 60
PANELS_IN = 10.0  # the width of the two panels; the legend's is added to it
LEGEND_LINE_IN = 0.17  # the height of a legend line at 8 points
MAX_EPOCH = 10**7  # an epoch number above this is junk, not a run's

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Curve:
    """One line of the plot: the epochs, the mean per epoch and its spread (zero for a single run)."""

    label: str
    runs: int
    epochs: np.ndarray
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is no such number (a string, a bool, a list, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _epoch(row: object) -> int | None:
    """The row's epoch: a whole number in [0, MAX_EPOCH], else None."""
    value = _number(row.get("epoch")) if isinstance(row, dict) else None
    return int(value) if value is not None and value.is_integer() and 0 <= value <= MAX_EPOCH else None


def valid_history(record: RunRecord) -> list[tuple[int, dict[str, float]]]:
    """``(epoch, {metric: value})`` for each history row of ``record`` that can be drawn; whatever cannot (a row
    that is no mapping, an epoch that is no whole number >= 0, a value that is no finite number, a history that
    is no list) is left out and named once, in one warning for the run."""
    history = record.results.get("history") or []
    rows: list[tuple[int, dict[str, float]]] = []
    junk = 0 if isinstance(history, list) else 1
    for row in history if isinstance(history, list) else []:
        epoch = _epoch(row)
        if epoch is None:
            junk += 1
            continue
        values = {metric.name: _number(row.get(metric.name)) for metric in CURVES if row.get(metric.name) is not None}
        junk += sum(value is None for value in values.values())
        rows.append((epoch, {name: value for name, value in values.items() if value is not None}))
    if junk:
        log.warning(
            "%s: left %d entr%s of its history out of the plot (not an epoch row of finite numbers)",
            record.path,
            junk,
            "y" if junk == 1 else "ies",
        )
    return rows


def curve_of(label: str, records: Sequence[RunRecord]) -> Curve | None:
    """The mean (and standard deviation) per epoch over the runs of ``records`` that logged each epoch;
    None when none logged any."""
    histories = [rows for rows in map(valid_history, records) if rows]
    if not histories:
        return None
    epochs = np.array(sorted({epoch for rows in histories for epoch, _ in rows}))
    mean, std = {}, {}
    for metric in CURVES:
        values = np.full((len(histories), len(epochs)), np.nan)
        for i, rows in enumerate(histories):
            for epoch, row in rows:
                if metric.name in row:
                    values[i, np.searchsorted(epochs, epoch)] = row[metric.name]
        counts = np.sum(np.isfinite(values), axis=0)
        with warnings.catch_warnings():  # an epoch no run (or one run) logged: NaN mean, no spread
            warnings.simplefilter("ignore", RuntimeWarning)
            mean[metric.name] = np.nanmean(values, axis=0)
            std[metric.name] = np.where(counts > 1, np.nanstd(values, axis=0, ddof=1), 0.0)
    label = f"{label} ({len(histories)} seeds, mean ± std)" if len(histories) > 1 else label
    return Curve(label, len(histories), epochs, mean, std)


def plot_overlays(curves: Sequence[Curve], title: str) -> Figure:
    """Validation accuracy and loss per epoch, one colour per curve, bands for seed groups."""
    legend_in = 0.6 + 0.07 * max((len(curve.label) for curve in curves), default=0)  # about 0.07 inch per character
    width = PANELS_IN + legend_in
    figure = new_figure(width, max(4.6, 1.2 + LEGEND_LINE_IN * len(curves)))  # room for every legend line
    axes = figure.subplots(1, len(CURVES), sharex=True)
    figure.subplots_adjust(left=0.6 / width, right=(PANELS_IN - 0.1) / width, bottom=0.12, top=0.86, wspace=0.22)
    colours = colormaps["tab10" if len(curves) <= 10 else "tab20"]
    for number, curve in enumerate(curves):
        colour = colours(number % colours.N)
        marker = "o" if len(curve.epochs) <= 30 else None
        for ax, metric in zip(axes, CURVES, strict=True):
            mean, spread = curve.mean[metric.name], curve.std[metric.name]
            ax.plot(
                curve.epochs,
                mean,
                color=colour,
                marker=marker,
                markersize=3,
                linewidth=1.5,
                label=curve.label if ax is axes[0] else None,
            )
            if curve.runs > 1:
                ax.fill_between(curve.epochs, mean - spread, mean + spread, color=colour, alpha=0.18, linewidth=0)
    for ax, metric in zip(axes, CURVES, strict=True):
        ax.set_title(f"{metric.name} ({'higher' if metric.higher_is_better else 'lower'} is better)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    figure.legend(loc="center left", bbox_to_anchor=(PANELS_IN / width, 0.5), fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=10)
    return figure


def short(label: str) -> str:
    return label if len(label) <= MAX_LEGEND_CHARS else label[: MAX_LEGEND_CHARS - 1] + "…"


def write_overlays(rows: Sequence[tuple[str, Sequence[RunRecord]]], path: str | Path, title: str) -> tuple[Path, int]:
    """Draw ``(label, runs)`` rows into ``path``; returns the path and how many rows had epochs to draw.
    Nothing to draw (no row logged an epoch: cross-validation runs keep theirs in their folds) is refused."""
    curves = [curve for label, records in rows if (curve := curve_of(short(label), records)) is not None]
    if not curves:
        raise ConfigError(
            "--plot",
            str(path),
            f"none of the {len(rows)} rows shown logged an epoch to draw (a "
            "cross-validation run keeps its epochs in its folds: give RUN/fold_* as paths)",
        )
    return save_png(plot_overlays(curves, title), path), len(curves)

"""A :class:`~sweeplab.reports.runs_table.RunsTable` as Markdown, CSV or JSON text."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from sweeplab.errors import ConfigError
from sweeplab.reports.runs_table import MeanStd, RunsTable

FORMATS = ("md", "csv", "json")
STD_SUFFIX = "_std"  # CSV: a grouped metric ``m`` becomes columns ``m`` (the mean) and ``m_std``


def render(table: RunsTable, fmt: str = "md") -> str:
    """The table as text in ``fmt`` (md, csv or json)."""
    renderers = {"md": render_markdown, "csv": render_csv, "json": render_json}
    if fmt not in renderers:
        raise ConfigError("--format", fmt, f"one of {', '.join(FORMATS)}")
    return renderers[fmt](table)


# --- Markdown ------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """How every table of sweeplab writes a value: 4 significant digits, ``-`` for none.

    Used by compare.py, the multirun summary, sweep and cross-validation reports.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, MeanStd):
        return cell_text(value.mean) if value.std is None else f"{value.mean:.4g} ± {value.std:.2g}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _is_numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float, MeanStd)) and not isinstance(v, bool) for v in present)


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """Any table as GitHub-flavoured Markdown: values through :func:`cell_text`, numbers right-aligned."""
    return render_markdown(RunsTable(list(columns), [dict(zip(columns, row, strict=True)) for row in rows]))


def render_markdown(table: RunsTable) -> str:
    """A GitHub-flavoured Markdown table, numbers right-aligned."""
    cells = [[cell_text(row.get(column)) for column in table.columns] for row in table.rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(table.columns)]
    numeric = [_is_numeric([row.get(column) for row in table.rows]) for column in table.columns]

    def line(values: list[str]) -> str:
        padded = (v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if right else ("-" * (w + 2)) for w, right in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(list(table.columns)), rule] + [line(row) for row in cells]) + "\n"


# --- CSV and JSON -------------------------------------------------------------------------


def _grouped(table: RunsTable) -> set[str]:
    return {c for c in table.columns if any(isinstance(row.get(c), MeanStd) for row in table.rows)}


def render_csv(table: RunsTable) -> str:
    """Plain values; a grouped metric gives its mean and, in ``<name>_std``, its standard deviation."""
    grouped = _grouped(table)
    header = [name for c in table.columns for name in ((c, c + STD_SUFFIX) if c in grouped else (c,))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        values: list[Any] = []
        for column in table.columns:
            value = row.get(column)
            if column in grouped:
                values += [value.mean, value.std] if isinstance(value, MeanStd) else [None, None]
            else:
                values.append(value)
        writer.writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, MeanStd):
        return {"mean": value.mean, "std": value.std, "count": value.count}
    return value


def render_json(table: RunsTable) -> str:
    """A list of rows, each with the table's columns and the run folder's ``path``."""
    rows = [{**{c: _plain(row.get(c)) for c in table.columns}, "path": row.get("path")} for row in table.rows]
    return json.dumps(rows, indent=2) + "\n"

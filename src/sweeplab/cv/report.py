"""The report of a cross-validation run: cv_report.json, cv_report.md, cv_folds.csv and a plot."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweeplab.cv.folds import Fold
from sweeplab.cv.plots import write_cv_plot
from sweeplab.files import write_json_atomic, write_text_atomic
from sweeplab.metrics import METRICS
from sweeplab.reports.table_render import markdown_table
from sweeplab.runs.folder import CV_FOLDS_CSV, CV_PLOT_PNG, CV_REPORT_JSON, CV_REPORT_MD
from sweeplab.runs.results import COMPLETED, RunResults
from sweeplab.stats import CONFIDENCE, clip_note, describe, mean, percent

CSV_COLUMNS = (
    "index",
    "repeat",
    "fold",
    "split_seed",
    "train_size",
    "val_size",
    "best_epoch",
    "epochs_run",
    "val_acc",
    "val_loss",
    "duration_s",
    "status",
)  # cv_folds.csv
SUMMARIZED_METRICS = ("val_acc", "val_loss", "best_epoch")


def fold_record(fold: Fold, results: RunResults) -> dict[str, Any]:
    """What the report keeps of one fold's ``fit`` results: the scores of its best checkpoint."""
    return {
        "index": fold.index,
        "repeat": fold.repeat,
        "fold": fold.fold,
        "split_seed": fold.split_seed,
        "train_size": results.train_size,
        "val_size": results.val_size,
        "best_epoch": results.best_epoch,
        "epochs_run": results.epochs_run,
        "val_acc": results.val_acc_at_best_epoch,
        "val_loss": results.best_val_loss,
        "best_val_acc": results.best_val_acc,
        "stopped_early": results.stopped_early,
        "duration_s": results.duration_s,
        "status": results.status,
        "error": results.error,
        "model": results.model,
        "run_dir": fold.name,
        "history": results.history,
        "val_confusion": results.val_confusion,
    }


def completed(records: Sequence[dict]) -> list[dict]:
    return [record for record in records if record["status"] == COMPLETED]


def summarize(records: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Mean, spread and intervals of every summarized metric over the completed folds."""
    done = completed(records)
    if not done:
        return {}
    n_train = mean([record["train_size"] for record in done])
    n_test = mean([record["val_size"] for record in done])
    return {
        metric: describe(
            [record[metric] for record in done if record[metric] is not None],
            n_train=n_train,
            n_test=n_test,
            bounds=METRICS[metric].bounds if metric in METRICS else None,
        )
        for metric in SUMMARIZED_METRICS
    }


def per_class_accuracy(records: Sequence[dict], classes: Sequence[str]) -> list[dict[str, Any]]:
    """Each class's validation accuracy (recall) per fold, from the best checkpoint's confusion matrix."""
    rows = []
    confusions = [record["val_confusion"] for record in completed(records) if record["val_confusion"]]
    for label, name in enumerate(classes):
        per_fold = []
        for confusion in confusions:
            support = sum(confusion[label])
            per_fold.append(confusion[label][label] / support if support else None)
        summary = describe([value for value in per_fold if value is not None])
        rows.append(
            {
                "class": name,
                "mean": summary["mean"],
                "std": summary["std"],
                "min": summary["min"],
                "max": summary["max"],
                "per_fold": per_fold,
            }
        )
    return rows


def folds_csv(records: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def write_cv_report(run_dir: str | Path, report: dict[str, Any], *, plot: bool = True) -> None:
    """Write the report's files into ``run_dir`` (the plot only when ``plot``: it is the slow part)."""
    run_dir = Path(run_dir)
    if plot and completed(report["fold_results"]):
        write_cv_plot(run_dir / CV_PLOT_PNG, report)
        report["plot"] = CV_PLOT_PNG
    write_json_atomic(run_dir / CV_REPORT_JSON, report)
    write_text_atomic(run_dir / CV_FOLDS_CSV, folds_csv(report["fold_results"]))
    write_text_atomic(run_dir / CV_REPORT_MD, render_markdown(report))


# --- markdown ------------------------------------------------------------------------
def interval_text(summary: dict, prefix: str = "") -> str | None:
    """``[low, high]`` of a summary's interval (``prefix="corrected_"``: the corrected one), saying when it
    was clipped to the metric's bounds; None without one."""
    low, high = summary.get(f"{prefix}ci_low"), summary.get(f"{prefix}ci_high")
    if low is None:
        return None
    return f"[{low:.4f}, {high:.4f}]" + (clip_note(summary.get("bounds")) if summary.get(f"{prefix}ci_clipped") else "")


def _headline(report: dict) -> str:
    acc = report["summary"].get("val_acc")
    if not acc or acc["mean"] is None:
        return "No fold completed with a validation score, so there is no estimate."
    if acc["n"] < 2:
        return f"val_acc = {acc['mean']:.4f} from a single fold: no spread, no interval."
    percent = round(100 * acc["confidence"])
    return (
        f"**val_acc = {acc['mean']:.4f} ± {acc['std']:.4f}** (mean ± std over {acc['n']} folds); "
        f"{percent}% interval {interval_text(acc)} (Student t, {acc['n'] - 1} dof, folds treated as independent), "
        f"{interval_text(acc, 'corrected_')} corrected for the training data folds share (Nadeau & Bengio). "
        "The corrected interval is the one to trust: the folds' training sets overlap, so their scores are not independent."
    )


FOLD_COLUMNS = tuple(c for c in CSV_COLUMNS if c != "duration_s")  # the report's fold table
SUMMARY_COLUMNS = ("n", "mean", "std", "sem", "ci", "corrected_ci", "min", "max")


def _fold_table(records: Sequence[dict]) -> list[str]:
    return markdown_table(list(FOLD_COLUMNS), [[r[c] for c in FOLD_COLUMNS] for r in records]).splitlines()


def _summary_table(summary: dict) -> list[str]:
    rows = [
        [
            metric,
            *(
                {**s, "ci": interval_text(s), "corrected_ci": interval_text(s, "corrected_")}[c]
                for c in SUMMARY_COLUMNS
            ),
        ]
        for metric, s in summary.items()
    ]
    level = percent(CONFIDENCE)
    header = [
        "metric",
        "n",
        "mean",
        "std",
        "standard error",
        f"{level} interval (t)",
        f"corrected {level} interval",
        "min",
        "max",
    ]
    return markdown_table(header, rows).splitlines()


def _per_class_table(rows: Sequence[dict]) -> list[str]:
    columns = ["class", "mean", "std", "min", "max"]
    return markdown_table(columns, [[r[c] for c in columns] for r in rows]).splitlines()


def _refit_section(refit: dict | None) -> list[str]:
    if not refit:
        return []
    lines = ["", "## Refit on the whole pool (apart from the estimate above)", ""]
    if refit["status"] != "completed":
        return lines + [f"The refit ended with status {refit['status']}: {refit.get('error')}"]
    return lines + [
        f"Trained on all {refit['train_size']:,} pool images for {refit['epochs']} epochs "
        f"(the rounded mean best epoch of the folds), without early stopping or checkpoint selection, "
        f"then tested once: **test_acc = {refit['test_acc']:.4f}**, test_loss = {refit['test_loss']:.4f} "
        f"on {refit['test_size']:,} test images. Its accuracy on its own training data "
        f"({refit['pool_acc']:.4f}) says nothing about new data. Folder: `{refit['run_dir']}/`.",
    ]


def render_markdown(report: dict[str, Any]) -> str:
    repeats = report["repeats"]
    lines = [
        f"# Cross-validation: {report['model']} on {report['dataset']}",
        "",
        f"Status: **{report['status']}**"
        + (f" ({report['error']})" if report.get("error") else "")
        + f". {report['folds']} stratified folds × {repeats} repeat{'s' if repeats != 1 else ''} "
        f"(split seeds {', '.join(map(str, report['split_seeds']))}) of the {report['pool_size']:,}-image training pool; "
        f"the test set is not used. {len(completed(report['fold_results']))} of {report['folds_planned']} folds completed "
        f"in {report['duration_s']:.1f} s. Each fold's scores are those of its best checkpoint (lowest val_loss).",
        "",
        _headline(report),
        "",
        "## Folds",
        "",
        *_fold_table(report["fold_results"]),
        "",
        "## Summary",
        "",
        *_summary_table(report["summary"]),
        "",
        "## Per-class validation accuracy over folds",
        "",
        *_per_class_table(report["per_class"]),
        *_refit_section(report.get("refit")),
    ]
    if report.get("plot"):
        lines += ["", f"![learning curves and fold scores]({report['plot']})"]
    lines += [
        "",
        "Every fold is a run folder of its own (`fold_N/`), with its TensorBoard events, "
        "checkpoints and results.json; the validation indices of every fold are in `cv_folds.json`.",
    ]
    return "\n".join(lines) + "\n"

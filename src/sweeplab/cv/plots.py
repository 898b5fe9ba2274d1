"""The picture of a cross-validation run: every fold's learning curves, and the fold scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

from sweeplab.reports.figures import new_figure, save_png


def _plot_curves(loss_axis, acc_axis, records: list[dict]) -> None:
    colors = colormaps["tab10"]
    for i, record in enumerate(records):
        color = colors(i % 10)
        rows = record["history"]
        epochs = [row["epoch"] for row in rows]
        label = f"fold {record['index']}"
        loss_axis.plot(epochs, [row.get("val_loss") for row in rows], color=color, label=label)
        loss_axis.plot(epochs, [row.get("train_loss") for row in rows], color=color, linestyle="--", alpha=0.6)
        acc_axis.plot(epochs, [row.get("val_acc") for row in rows], color=color, label=label)
        if record["best_epoch"] is not None:
            loss_axis.plot(record["best_epoch"], record["val_loss"], "o", color=color)
            acc_axis.plot(record["best_epoch"], record["val_acc"], "o", color=color)
    loss_axis.set(title="loss per epoch (val solid, train dashed; dot = best)", xlabel="epoch", ylabel="loss")
    acc_axis.set(title="validation accuracy per epoch", xlabel="epoch", ylabel="val_acc")
    acc_axis.legend(fontsize="small")
    for axis in (loss_axis, acc_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def _plot_scores(axis, records: list[dict], summary: dict[str, Any] | None) -> None:
    axis.scatter(
        [r["index"] for r in records],
        [r["val_acc"] for r in records],
        c=[r["repeat"] for r in records],
        cmap="viridis",
        zorder=3,
        label="fold (colour: repeat)",
    )
    if summary and summary.get("mean") is not None:
        axis.axhline(summary["mean"], color="black", label=f"mean {summary['mean']:.4f}")
        if summary.get("corrected_ci_low") is not None:
            axis.axhspan(
                summary["corrected_ci_low"],
                summary["corrected_ci_high"],
                color="tab:orange",
                alpha=0.15,
                label="95% interval, corrected",
            )
        if summary.get("ci_low") is not None:
            axis.axhspan(summary["ci_low"], summary["ci_high"], color="tab:blue", alpha=0.25, label="95% interval (t)")
    axis.set(title="fold scores (best checkpoint)", xlabel="fold", ylabel="val_acc")
    axis.set_xticks([r["index"] for r in records])
    axis.legend(fontsize="small")


def write_cv_plot(path: str | Path, report: dict[str, Any]) -> Path:
    """Three panels: loss curves, accuracy curves, and the fold scores with mean and intervals."""
    path = Path(path)
    records = [r for r in report["fold_results"] if r["status"] == "completed"]
    figure = new_figure(16, 4.8)
    loss_axis, acc_axis, score_axis = figure.subplots(1, 3)
    _plot_curves(loss_axis, acc_axis, records)
    _plot_scores(score_axis, records, report["summary"].get("val_acc"))
    figure.suptitle(
        f"{report['model']} on {report['dataset']}: "
        f"{report['folds']}-fold cross-validation × {report['repeats']} repeat(s)"
    )
    figure.subplots_adjust(left=0.05, right=0.99, bottom=0.12, top=0.85, wspace=0.22)
    return save_png(figure, path)

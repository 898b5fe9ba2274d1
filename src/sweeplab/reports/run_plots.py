"""Plots written into a run's folder, and logged to TensorBoard as images: a Lightning callback.

``curves.png``: loss, accuracy and learning rate per epoch, when training ends;
``confusion.png``: the test confusion matrix of the best checkpoint and
``misclassified.png``: test images it got wrong, with predicted and true labels, when
the test ends. With a TensorBoard logger the last two, and the first conv layer's
kernels, also go to TensorBoard's Images tab. ``conf/callbacks/default.yaml`` adds
:class:`RunPlots` to every run (``~callbacks.run_plots`` leaves it out).

Plotting must never cost a run its results: every failure here is logged as a
warning and the run goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import cast

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

from sweeplab.reports.conv_layers import first_conv_kernels
from sweeplab.reports.figures import new_figure, render_rgb, save_png
from sweeplab.reports.tiles import TileLayout, draw_tiles, grid_shape, scale_each
from sweeplab.runs.fit import best_row
from sweeplab.runs.folder import CONFUSION_PNG, CURVES_PNG, MISCLASSIFIED_PNG, RunFolder
from sweeplab.runs.results import RunResults
from sweeplab.training.module import MAX_MISCLASSIFIED_KEPT

log = logging.getLogger(__name__)

MAX_MISCLASSIFIED_SHOWN = 64
MAX_ANNOTATED_CLASSES = 20  # above this, confusion counts would not fit in their cells
TILE_INCHES = 0.9
LABEL_POINTS = 6.0
KERNEL_PIXELS_IN_TENSORBOARD = 40  # kernels are upscaled to about this size, they are 3x3..11x11
Plot = tuple[str, str | None, Callable[[], Figure]]  # file name, TensorBoard tag, how to draw it


class RunPlots(Callback):
    """Draws the run's plots into its folder (``trainer.default_root_dir``) on the main process."""

    draws_run_plots = True  # left out of a run told to draw none (sweeplab.runs.build.build_callbacks)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, list(_training_plots(trainer, pl_module)))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn == "fit":  # a diverged or stopped run still shows how it went
            self._write(trainer, pl_module, list(_training_plots(trainer, pl_module)))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, list(_test_plots(pl_module, trainer.datamodule)), kernels=True)  # type: ignore[attr-defined]  # Lightning sets Trainer.datamodule at run time without declaring it

    def _write(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, plots: list[Plot], kernels: bool = False
    ) -> None:
        if not trainer.is_global_zero:
            return
        writer = _tensorboard_writer(trainer)
        for filename, tag, plot in plots:
            try:
                image = render_rgb(plot())
                save_png(image, Path(trainer.default_root_dir) / filename)
                if writer is not None and tag:
                    writer.add_image(tag, image, trainer.global_step, dataformats="HWC")
            except Exception as error:  # noqa: BLE001 (plots are never worth a run)
                log.warning("could not write %s: %s: %s", filename, type(error).__name__, error, exc_info=True)
        if writer is not None and kernels:
            try:
                _log_first_layer_kernels(writer, cast(torch.nn.Module, pl_module.model), trainer.global_step)
                writer.flush()
            except Exception as error:  # noqa: BLE001
                log.warning("could not log kernels to TensorBoard: %s: %s", type(error).__name__, error, exc_info=True)


def draw_run_plots(run_dir: str | Path) -> list[Path]:
    """Draw a finished run's ``curves.png``, ``confusion.png`` and ``misclassified.png`` (and their TensorBoard
    images, with the first layer's kernels) from its folder: ``results.json`` and the best checkpoint.

    What :class:`RunPlots` draws during a run, drawn afterwards: a sweep draws its best trial's plots this way
    at the study's end (``sweep.trial_plots=best``) instead of every trial's during training. The misclassified
    images are found again by the best checkpoint's model on the test set (the ones its test saw, in order).
    Never raises: a failure is logged as a warning; returns the files written.
    """
    run_dir = Path(run_dir)
    try:
        results = RunResults.read(RunFolder(run_dir).results)
        plots: list[Plot] = []
        if results.history:
            best = results.best_epoch
            plots.append((CURVES_PNG, None, lambda: plot_curves(results.history, best)))
        model = None
        if results.test_confusion is not None:
            from sweeplab.reports.run_model import load_run_model  # noqa: PLC0415 (reports.run_model builds runs)

            restored = load_run_model(run_dir)
            model = restored.model
            misclassified = _misclassified(model, restored.datamodule)
            confusion, classes = (
                results.test_confusion,
                list(results.classes) or [str(i) for i in range(len(results.test_confusion))],
            )
            wrong_total = int(np.sum(confusion) - np.trace(confusion))
            plots.append((CONFUSION_PNG, "test/confusion_matrix", lambda: plot_confusion(confusion, classes)))
            plots.append(
                (
                    MISCLASSIFIED_PNG,
                    "test/misclassified",
                    lambda: plot_misclassified(misclassified, classes, wrong_total=wrong_total)[0],
                )
            )
    except Exception as error:  # noqa: BLE001 (plots are never worth a run)
        log.warning("could not draw the plots of %s: %s: %s", run_dir, type(error).__name__, error)
        return []
    step = int(results.history[-1].get("step", 0) or 0) if results.history else 0
    return _save_plots(run_dir, plots, step, model)


def _misclassified(model: torch.nn.Module, datamodule) -> list[tuple[torch.Tensor, int, int]]:
    """The first test images ``model`` gets wrong, as the module's test keeps them: (standardized image, predicted, true)."""
    kept: list[tuple[torch.Tensor, int, int]] = []
    with torch.no_grad():
        for start in range(0, len(datamodule.test_labels), datamodule.eval_batch_size):
            images = datamodule.normalize(datamodule.test_images[start : start + datamodule.eval_batch_size])
            labels = datamodule.test_labels[start : start + datamodule.eval_batch_size]
            predicted = model(images).argmax(dim=1)
            for i in (predicted != labels).nonzero().flatten().tolist()[: MAX_MISCLASSIFIED_KEPT - len(kept)]:
                kept.append((images[i], int(predicted[i]), int(labels[i])))
            if len(kept) >= MAX_MISCLASSIFIED_KEPT:
                break
    return kept


def _save_plots(run_dir: Path, plots: list[Plot], step: int, model: torch.nn.Module | None) -> list[Path]:
    """Write ``plots`` into ``run_dir`` and, when the run logs to TensorBoard there, as images of its events."""
    from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 (only when plots are drawn after the run)

    written = []
    writer = SummaryWriter(str(run_dir)) if any(run_dir.glob("events.out.tfevents.*")) else None
    try:
        for filename, tag, plot in plots:
            try:
                image = render_rgb(plot())
                written.append(save_png(image, run_dir / filename))
                if writer is not None and tag:
                    writer.add_image(tag, image, step, dataformats="HWC")
            except Exception as error:  # noqa: BLE001
                log.warning("could not write %s: %s: %s", filename, type(error).__name__, error)
        if writer is not None and model is not None:
            _log_first_layer_kernels(writer, model, step)
    finally:
        if writer is not None:
            writer.close()
    return written


def _training_plots(trainer: pl.Trainer, module) -> Iterator[Plot]:
    history = list(getattr(module, "history", []))
    if history:
        best = best_row(trainer, history)
        yield CURVES_PNG, None, lambda: plot_curves(history, best["epoch"] if best else None)


def _test_plots(module, datamodule) -> Iterator[Plot]:
    confusion = getattr(module, "confusion", {}).get("test")
    if confusion is None:
        return
    confusion = confusion.tolist()
    classes = list(getattr(datamodule, "classes", None) or [str(i) for i in range(len(confusion))])
    wrong_total = int(np.sum(confusion) - np.trace(confusion))
    yield CONFUSION_PNG, "test/confusion_matrix", lambda: plot_confusion(confusion, classes)
    yield (
        MISCLASSIFIED_PNG,
        "test/misclassified",
        lambda: plot_misclassified(module.misclassified, classes, wrong_total=wrong_total)[0],
    )


def _tensorboard_writer(trainer: pl.Trainer):
    """The SummaryWriter of the trainer's TensorBoard logger, or None."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


# --- curves ------------------------------------------------------------------------


def _column(history: Sequence[dict], key: str) -> np.ndarray:
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in history])


def plot_curves(history: Sequence[dict], best_epoch: int | None = None) -> Figure:
    """Train and validation loss and accuracy, and the learning rate, per epoch."""
    figure = new_figure(12, 3.6)
    loss_ax, acc_ax, lr_ax = figure.subplots(1, 3)
    figure.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.91, wspace=0.22)
    epochs = _column(history, "epoch")
    marker = "o" if len(history) <= 30 else None
    for ax, metric, title in ((loss_ax, "loss", "loss"), (acc_ax, "acc", "accuracy")):
        for stage in ("train", "val"):
            ax.plot(epochs, _column(history, f"{stage}_{metric}"), marker=marker, markersize=3, label=stage)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
        ax.set_title(title)
        ax.legend(fontsize=8)
    lrs = _column(history, "lr")
    lr_ax.plot(epochs, lrs, marker=marker, markersize=3, color="tab:green")
    if np.all(lrs[np.isfinite(lrs)] > 0):
        lr_ax.set_yscale("log")
    lr_ax.set_title("learning rate")
    for ax in (loss_ax, acc_ax, lr_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return figure


# --- confusion matrix ----------------------------------------------------------------


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> Figure:
    """Counts of (true, predicted) test labels; the title gives the accuracy they imply."""
    counts = np.asarray(confusion, dtype=np.int64)
    n = len(counts)
    side = min(14.0, max(5.0, 0.45 * n + 2.5))
    width = side + (1.0 if n > MAX_ANNOTATED_CLASSES else 0.2)
    figure = new_figure(width, side)
    ax = figure.subplots()
    margin = 1.3  # inches for class names and axis labels
    figure.subplots_adjust(left=margin / width, right=1 - 0.2 / width, bottom=margin / side, top=1 - 0.45 / side)
    picture = ax.imshow(counts, cmap="Blues", interpolation="nearest")
    if n > MAX_ANNOTATED_CLASSES:  # too many cells for their counts: a colour scale instead
        figure.colorbar(picture, ax=ax, shrink=0.8, pad=0.02)
    else:
        threshold = counts.max() / 2 if counts.size else 0
        for (true, predicted), count in np.ndenumerate(counts):
            ax.text(
                predicted,
                true,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if count > threshold else "black",
            )
    ax.set_xticks(range(n), [str(name) for name in classes], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [str(name) for name in classes], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total, correct = int(counts.sum()), int(np.trace(counts))
    accuracy = f" ({correct / total:.2%})" if total else ""
    ax.set_title(f"test confusion matrix: {correct} of {total} correct{accuracy}")
    return figure


# --- misclassified images --------------------------------------------------------------


def plot_misclassified(
    misclassified: Sequence[tuple[torch.Tensor, int, int]],
    classes: Sequence[str],
    wrong_total: int | None = None,
) -> tuple[Figure, TileLayout]:
    """A grid of misclassified test images (image, predicted, true), each labelled with both classes."""
    shown = list(misclassified)[:MAX_MISCLASSIFIED_SHOWN]
    wrong_total = len(misclassified) if wrong_total is None else wrong_total
    if not shown:
        figure = new_figure(4, 1.5)
        ax = figure.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no misclassified test images", ha="center", va="center", transform=ax.transAxes)
        return figure, TileLayout(0, 0, 0)
    images = torch.stack([image.detach().cpu().float() for image, _, _ in shown])
    if images.shape[1] not in (1, 3):
        images = images.mean(dim=1, keepdim=True)
    labels = [f"pred {classes[predicted]}\ntrue {classes[true]}" for _, predicted, true in shown]
    rows, cols = grid_shape(len(shown))
    height, width = images.shape[2:]
    pixels_per_inch = width / TILE_INCHES
    band = math.ceil(2.4 * LABEL_POINTS / 72 * pixels_per_inch)  # two lines of labels
    title_inches = 0.35
    figure_height = rows * TILE_INCHES * (height + band) / width + title_inches
    figure = new_figure(max(3.0, cols * TILE_INCHES), figure_height)
    ax = figure.add_axes((0.01, 0.01, 0.98, 1 - title_inches / figure_height - 0.01))
    layout = draw_tiles(ax, images, labels, label_size=LABEL_POINTS, label_band=band)
    figure.suptitle(f"{len(shown)} of {wrong_total} misclassified test images", fontsize=9, y=0.995, va="top")
    return figure, layout


# --- kernels to TensorBoard ------------------------------------------------------------


def kernel_grid(kernels: torch.Tensor) -> torch.Tensor:
    """First-layer kernels (N, 1 or 3, k, k) as one (3, H, W) image in [0, 1], enlarged to be seen."""
    scale = max(1, KERNEL_PIXELS_IN_TENSORBOARD // max(kernels.shape[-2:]))
    enlarged = F.interpolate(scale_each(kernels), scale_factor=scale, mode="nearest")
    _, cols = grid_shape(len(kernels))
    return make_grid(enlarged, nrow=cols, padding=2, pad_value=1.0)


def _log_first_layer_kernels(writer, model: torch.nn.Module, step: int) -> None:
    kernels = first_conv_kernels(model)
    if kernels is not None:
        writer.add_image("model/first_layer_kernels", kernel_grid(kernels), step, dataformats="CHW")

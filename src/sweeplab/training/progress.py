"""The progress bar of a run on a terminal: the running training loss and accuracy, the last validation."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar

SHOWN = ("train_loss", "train_acc", "val_loss", "val_acc")


class RunProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, one line per epoch left on screen (``leave``), showing the epoch's running
    training loss and accuracy and the last finished epoch's validation figures.

    The training figures are read from the module's running totals when the bar is redrawn
    (every ``refresh_rate`` steps): nothing is logged per step for it.
    """

    def __init__(self, refresh_rate: int = 20, leave: bool = True) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != "fit":  # the best checkpoint's evaluation after training: its line is enough
            self.disable()
        super().on_validation_start(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.disable()
        super().on_test_start(trainer, pl_module)

    def get_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        history = getattr(pl_module, "history", [])
        last = dict(history[-1] if history else {})
        totals = getattr(pl_module, "train_totals", None)
        if totals is not None and totals.count and last.get("epoch") != trainer.current_epoch + 1:
            running = totals.means()
            last.update(train_loss=float(running["loss"]), train_acc=float(running["acc"]))
        return {key: f"{last[key]:.4f}" for key in SHOWN if last.get(key) is not None}

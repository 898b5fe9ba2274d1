"""A tqdm progress bar that counts optimizer steps, also when batches come in groups."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar

from sweeplab.data.grouping import batches_in


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, its training bar in steps (batches) rather than loader items.

    With ``steps_per_execution`` > 1 the training loop sees one item per group of
    batches; this bar still shows ``steps done / steps per epoch`` and redraws about
    every ``refresh_rate`` steps.
    """

    @property
    def total_train_batches(self) -> int | float:
        items = super().total_train_batches
        loader = self.trainer.train_dataloader
        group = getattr(loader, "group", 1)
        if group == 1 or items == float("inf"):
            return items
        return loader.batches_in_items(int(items))

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._steps = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        before = self._steps
        self._steps += len(batches_in(batch))
        bar = self.train_progress_bar
        if bar is None or not self.is_enabled or bar.disable:
            return
        finished = bar.total is not None and self._steps >= bar.total
        if finished or self._steps // self.refresh_rate > before // self.refresh_rate:
            bar.n = min(self._steps, bar.total) if bar.total is not None else self._steps
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))

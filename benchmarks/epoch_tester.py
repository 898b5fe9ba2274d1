"""A callback for ``benchmarks/time_to_accuracy.py``: tests after every epoch, stops at a target accuracy."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from time_to_accuracy import record  # benchmarks/ is on the path of the run that loads this


class TestEachEpoch(pl.Callback):
    """After each training epoch's validation, test the current weights; stop once ``target`` is reached."""

    def __init__(self, target: float, out: str) -> None:
        self.target, self.out = float(target), Path(out)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        datamodule, correct, total = trainer.datamodule, 0, 0
        for batch in datamodule.test_dataloader():
            images, labels = datamodule.on_after_batch_transfer(batch, 0)
            correct += int((pl_module(images.to(pl_module.device)).argmax(1).cpu() == labels).sum())
            total += len(labels)
        record(self.out, trainer.current_epoch + 1, correct / total)
        if correct / total >= self.target:
            trainer.should_stop = True

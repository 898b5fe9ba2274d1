"""Early warnings a newcomer needs, each in one line: a first epoch that will take long on this CPU,
and a model that is not learning."""

from __future__ import annotations

import logging
import time
from typing import cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger("sweeplab.training")


class TrainingWatch(Callback):
    """Args:
    slow_epoch_s: warn up front when the first epoch is estimated to take longer (CPU runs only).
    chance_epochs: warn when validation accuracy has stayed near chance this many epochs.
    chance_margin: "near chance" is below ``1 / classes + chance_margin``.
    """

    def __init__(self, slow_epoch_s: float = 300.0, chance_epochs: int = 2, chance_margin: float = 0.05) -> None:
        self.slow_epoch_s, self.chance_epochs, self.chance_margin = slow_epoch_s, chance_epochs, chance_margin
        self.warned_chance = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.strategy.root_device.type != "cpu" or not trainer.is_global_zero:
            return
        seconds = self.step_seconds(trainer, pl_module)
        estimate = seconds * trainer.num_training_batches
        if estimate > self.slow_epoch_s:
            log.warning(
                "on this CPU one epoch will take about %.0f minutes (%.2f s a batch x %d batches, timed on "
                "the first); try model.width_divisor=8 (or a smaller model), or trainer=gpu on a GPU machine",
                estimate / 60,
                seconds,
                trainer.num_training_batches,
            )

    @staticmethod
    def step_seconds(trainer: pl.Trainer, pl_module: pl.LightningModule) -> float:
        """A training step's time, estimated as three forward passes (the backward costs about two) of
        one batch in eval mode, so that batch norm statistics, dropout and augmentation draws are left as
        they were (a resumed run must draw the same random numbers as an uninterrupted one)."""
        loader = trainer.train_dataloader
        assert loader is not None  # measured once training has started: its loader is set
        images, _ = next(iter(loader))
        normalize = getattr(trainer.datamodule, "normalize", None)  # type: ignore[attr-defined]  # Lightning sets Trainer.datamodule at run time without declaring it
        if normalize is not None:  # the datamodule's own standardization, without its augmentation
            images = normalize(images)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            started = time.perf_counter()
            pl_module(images.to(pl_module.device))
            seconds = 3 * (time.perf_counter() - started)
        pl_module.train(was_training)
        return seconds

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        recent = [row.get("val_acc") for row in getattr(pl_module, "history", [])[-self.chance_epochs :]]
        chance = 1 / cast(int, pl_module.num_classes)
        if (
            self.warned_chance
            or trainer.state.fn != "fit"
            or len(recent) < self.chance_epochs
            or any(acc is None or acc >= chance + self.chance_margin for acc in recent)
        ):
            return
        self.warned_chance = True
        log.warning(
            "val_acc has stayed near chance for %d epochs (%s; chance is %.3f for %d classes): the model is "
            "not learning; try lr_find=true to choose optimizer.lr, model.norm=batch, or another model",
            self.chance_epochs,
            ", ".join(f"{acc:.3f}" for acc in recent),
            chance,
            pl_module.num_classes,
        )

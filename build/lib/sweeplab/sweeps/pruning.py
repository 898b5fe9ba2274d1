"""Per-epoch reports to the study's pruner, from inside the training loop."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn
from optuna_integration import PyTorchLightningPruningCallback


class EpochPruningCallback(PyTorchLightningPruningCallback):
    """optuna-integration's Lightning callback, reporting only while the model trains.

    ``fit`` validates the best checkpoint once more after training; the library's
    callback would report that as an extra epoch, and could even prune a run that
    already finished. Reports use the 0-based epoch as the step.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            return
        super().on_validation_end(trainer, pl_module)

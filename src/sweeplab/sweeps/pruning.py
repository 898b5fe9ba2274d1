"""Per-epoch reports to the study's pruner, from inside the training loop."""

from __future__ import annotations

import lightning.pytorch as pl
import optuna
from lightning.pytorch.trainer.states import TrainerFn
from optuna_integration import PyTorchLightningPruningCallback

from sweeplab.errors import RunStopped
from sweeplab.runs.results import PRUNED


class PrunedRun(optuna.TrialPruned, RunStopped):
    """Optuna's pruning signal that ``fit`` also knows: the run is recorded as ``pruned`` (results.json,
    TensorBoard's HParams status), not as a failure."""

    status = PRUNED


class EpochPruningCallback(PyTorchLightningPruningCallback):
    """optuna-integration's Lightning callback, reporting only while the model trains.

    ``fit`` validates the best checkpoint once more after training; the library's
    callback would report that as an extra epoch, and could even prune a run that
    already finished. Reports use the 0-based epoch as the step.
    """

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        super().__init__(trial, monitor)
        self.trial = trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            return
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned:
            pruner = type(self.trial.study.pruner).__name__
            raise PrunedRun(f"pruned by {pruner} after epoch {trainer.current_epoch + 1}") from None

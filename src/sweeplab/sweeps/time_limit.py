"""A time limit for a sweep's trial (``sweep.trial_timeout_min``), checked on the wall clock after every batch."""

from __future__ import annotations

import time

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from sweeplab.errors import RunStopped
from sweeplab.runs.results import TIMED_OUT


class RunTimedOut(RunStopped):
    """A run stopped at its time limit: ``fit`` records it as ``timed_out`` (no failure, no error.txt)."""

    status = TIMED_OUT


class TimeLimit(Callback):
    """Stop the run once ``minutes`` have passed since its training began, at the end of the batch (or of the
    validation) that crosses the limit: well within one epoch of it."""

    def __init__(self, minutes: float) -> None:
        self.limit_s = float(minutes) * 60
        self.started: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: PLR0917
        self._check(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        if self.started is None:
            return
        spent = time.monotonic() - self.started
        if spent > self.limit_s:
            raise RunTimedOut(
                f"timed out: {spent:.1f} s of training passed its limit of {self.limit_s / 60:g} min "
                f"(sweep.trial_timeout_min), in epoch {trainer.current_epoch + 1}"
            )

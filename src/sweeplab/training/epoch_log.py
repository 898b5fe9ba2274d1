"""One log line per epoch, for runs without a progress bar (CI, batch jobs, log files)."""

from __future__ import annotations

import logging

from lightning.pytorch.callbacks import Callback

log = logging.getLogger("sweeplab.training")


class EpochLog(Callback):
    """Logs each new row of the module's history: epoch, losses, accuracies, lr, seconds."""

    def __init__(self) -> None:
        self.logged = 0

    def _log_new_rows(self, trainer, pl_module) -> None:
        history = getattr(pl_module, "history", [])
        for row in history[self.logged :]:
            fields = [f"epoch {row['epoch']}/{trainer.max_epochs}"]
            fields += [
                f"{key} {row[key]:.4f}" for key in ("train_loss", "train_acc", "val_loss", "val_acc") if key in row
            ]
            fields += [f"lr {row['lr']:.3g}", f"{row.get('epoch_s', 0):.1f}s"]
            log.info("  ".join(fields))
        self.logged = len(history)

    def on_fit_start(self, trainer, pl_module) -> None:
        """A resumed run's history already holds the epochs its checkpoint trained: say so once, log only new ones."""
        restored = len(getattr(pl_module, "history", []))
        if restored and not self.logged:
            log.info("resuming after epoch %d of %d (its checkpoint's)", restored, trainer.max_epochs)
            self.logged = restored

    def on_validation_end(self, trainer, pl_module) -> None:
        self._log_new_rows(trainer, pl_module)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._log_new_rows(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._log_new_rows(trainer, pl_module)

"""A callback that kills its own process with SIGKILL, to test resuming (tests only)."""

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class KillAfterEpoch(Callback):
    """SIGKILL the process when epoch ``epoch + 1`` starts, i.e. after ``epoch`` epochs were saved.

    With ``folder``, only in the run whose folder has that name (one trial of a sweep).
    """

    def __init__(self, epoch: int, folder: str | None = None) -> None:
        self.epoch, self.folder = epoch, folder

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch and self.folder in (None, Path(trainer.default_root_dir).name):
            os.kill(os.getpid(), signal.SIGKILL)

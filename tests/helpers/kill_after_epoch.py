"""A callback that kills its own process with SIGKILL, to test resuming (tests only)."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class KillAfterEpoch(Callback):
    """SIGKILL the process when epoch ``epoch + 1`` starts, i.e. after ``epoch`` epochs were saved."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)

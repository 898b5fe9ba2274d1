"""A callback that kills its own process with SIGKILL, to test resuming (tests only)."""

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class KillAfterEpoch(Callback):
    """SIGKILL the process when epoch ``epoch + 1`` starts, i.e. after ``epoch`` epochs were saved.

    With ``folder``, only in the run whose folder has that name (one trial of a sweep). With ``once``, a run folder
    is killed once (a marker file ``killed_here`` says it was): its resume, by the same command, goes on.
    """

    def __init__(self, epoch: int, folder: str | None = None, once: bool = False) -> None:
        self.epoch, self.folder, self.once = epoch, folder, once

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        run_dir = Path(trainer.default_root_dir)
        if trainer.current_epoch == self.epoch and self.folder in (None, run_dir.name):
            if self.once:
                if (run_dir / "killed_here").exists():
                    return
                (run_dir / "killed_here").write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

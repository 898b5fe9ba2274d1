"""A callback that stops a SLURM job's first attempt at an epoch until the test requeues it (tests only)."""

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback

MARKER = "waiting_for_requeue"  # test_cluster.py waits for it


class WaitForRequeue(Callback):
    """When epoch ``epoch + 1`` starts (``epoch`` epochs saved) in a job SLURM has not restarted yet, write
    ``RUN_DIR/waiting_for_requeue`` (holding the job id) and wait for a signal: ``scontrol requeue`` sends
    SIGTERM, and the run then ends as a preempted one does. With ``folder``, only in the run whose folder
    has that name (one fold of a cross-validation)."""

    def __init__(self, epoch: int, folder: str | None = None) -> None:
        self.epoch, self.folder = epoch, folder

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch != self.epoch or int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0:
            return
        if self.folder not in (None, Path(trainer.default_root_dir).name):
            return
        job = os.environ["SLURM_JOB_ID"]
        array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        (Path(trainer.default_root_dir) / MARKER).write_text(f"{array}_{task}" if array and task else job)
        signal.pause()

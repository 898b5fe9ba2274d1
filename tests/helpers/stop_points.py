"""Hold a command at a known point until a test sends it a signal (tests only).

Each holder writes a marker file (holding the process id) and then waits, so a test
polls for the marker and signals a process that is provably there: in mid-epoch
(:class:`HoldMidEpoch`), while its config is checked (:class:`HoldWhileChecked`), or
while a reader opens a file (:func:`install_from_env`, from a ``sitecustomize``). A
holder whose signal is ignored (``nohup``) goes on once the test writes
``<marker>.release``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

MARKER = "stop_here"  # RUN_DIR/stop_here.1, .2, ...: one per hold
HOLD_ON_OPEN = "SWEEPLAB_TEST_HOLD_ON_OPEN"  # install_from_env: hold when a file whose path ends so is opened
HOLD_MARKER = "SWEEPLAB_TEST_HOLD_MARKER"  # ... writing this marker


def hold(marker: Path) -> None:
    """Write ``marker``, then wait until a signal stops this process (or ``<marker>.release`` appears)."""
    marker.write_text(str(os.getpid()))
    release = marker.with_name(marker.name + ".release")
    while not release.exists():
        time.sleep(0.02)


class HoldMidEpoch(Callback):
    """After ``batches`` training batches of epoch ``epoch`` (from 0), or with ``phase="test"`` after ``batches``
    batches of the test phase, write ``RUN_DIR/stop_here.N`` and hold.

    A run folder is held ``times`` times at most: a resume of a stopped run (the same command, whose
    folder holds the marker) goes on. With ``folder``, only in the run whose folder has that name
    (one fold, one trial).
    """

    def __init__(
        self, epoch: int = 1, batches: int = 2, phase: str = "train", folder: str | None = None, times: int = 1
    ) -> None:
        self.epoch, self.batches, self.phase, self.folder, self.times = epoch, batches, phase, folder, times

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.phase == "train" and trainer.current_epoch == self.epoch and batch_idx + 1 == self.batches:
            self._hold_once(trainer)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: PLR0917
        if self.phase == "test" and batch_idx + 1 == self.batches:
            self._hold_once(trainer)

    def _hold_once(self, trainer) -> None:
        folder = Path(trainer.default_root_dir)
        if self.folder not in (None, folder.name):
            return
        held = len([p for p in folder.glob(f"{MARKER}.*") if not p.name.endswith(".release")])
        if held < self.times:
            hold(folder / f"{MARKER}.{held + 1}")


class HoldWhileChecked(Callback):
    """Holds when first built in a process: ``train.py`` builds its callbacks once on nothing while it checks the
    config (preflight), before any run folder exists."""

    built = False

    def __init__(self, marker: str) -> None:
        if not HoldWhileChecked.built:
            HoldWhileChecked.built = True
            hold(Path(marker))


def install_from_env() -> None:
    """From a ``sitecustomize``: hold the first time this process opens a file whose path ends with
    ``$SWEEPLAB_TEST_HOLD_ON_OPEN``, writing ``$SWEEPLAB_TEST_HOLD_MARKER``."""
    ending, marker = os.environ.get(HOLD_ON_OPEN), os.environ.get(HOLD_MARKER)
    if not ending or not marker:
        return
    held = []

    def on_open(event: str, args: tuple) -> None:
        path = os.fspath(args[0]) if event == "open" and isinstance(args[0], (str, os.PathLike)) else None
        if isinstance(path, str) and not held and path.endswith(ending):
            held.append(True)
            hold(Path(marker))

    sys.addaudithook(on_open)

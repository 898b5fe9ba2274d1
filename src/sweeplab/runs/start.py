"""Starting a run in its folder, only once everything it needs has been checked.

A command that is refused must leave a folder as it found it: a new folder is
removed again, an existing one (a run being resumed) is not written to. So the
``.hydra/`` files and ``train.log`` are written by :func:`start_run`, after the
checks, and never by Hydra (``hydra.output_subdir: null``, console-only job logging).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

from sweeplab.cluster import current_job_record
from sweeplab.runs.checkpoints import check_resume
from sweeplab.runs.config_record import record_run_config
from sweeplab.errors import UserInputError
from sweeplab.runs.folder import LOG_FILE, RunFolder
from sweeplab.runs.hparams import flat_hparams
from sweeplab.runs.results import COMPLETED, FAILED, RunResults

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


class RunStart:
    """Records a run in its folder when called: the ``.hydra/`` files, and ``train.log`` opened for the run's log."""

    def __init__(self, cfg: DictConfig, run_dir: Path, hydra_node: DictConfig | None, overrides: Sequence[str]) -> None:
        self.cfg, self.run_dir, self.hydra_node, self.overrides = cfg, Path(run_dir), hydra_node, list(overrides)
        self.handler: logging.Handler | None = None

    @property
    def started(self) -> bool:
        return self.handler is not None

    def __call__(self) -> None:
        if self.started:
            return
        record_run_config(self.run_dir, self.cfg, self.hydra_node, self.overrides)
        self.handler = logging.FileHandler(self.run_dir / LOG_FILE)
        self.handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(self.handler)

    def close(self) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()


@contextmanager
def starting_run(cfg: DictConfig, run_dir: Path, hydra_node: DictConfig | None, overrides: Sequence[str],
                 *, folder_is_new: bool) -> Iterator[RunStart]:
    """Check what only the folder can tell (a resume, a finished run), then hand out the :class:`RunStart`
    that ``fit`` calls once everything is built, just before training.

    Whatever fails before that leaves the folder as it was: a folder this command made
    (``folder_is_new``) is removed again, an existing one is not written to.
    """
    start = RunStart(cfg, run_dir, hydra_node, overrides)
    try:
        check_resume(cfg, run_dir)
        refuse_finished_run(cfg, run_dir)
        yield start
    except BaseException:
        if folder_is_new and not start.started:
            remove_if_empty(run_dir, stop_at=Path(cfg.paths.output_dir))
        raise
    finally:
        start.close()


def record_failed_job(cfg: DictConfig, run_dir: Path, hydra_node: DictConfig | None, overrides: Sequence[str],
                      error: str) -> None:
    """A grid job that could not run still leaves its config and a ``failed`` results.json: a row of the summary."""
    folder = RunFolder(run_dir)
    if folder.results.is_file():  # fit recorded it
        return
    record_run_config(folder.path, cfg, hydra_node, overrides)
    RunResults(status=FAILED, error=error, hparams=flat_hparams(cfg), seed=cfg.get("seed"),
               job=current_job_record()).write(folder.results)


def refuse_finished_run(cfg: DictConfig, run_dir: Path) -> None:
    """A folder holding a completed run is only written to by a resume of it."""
    path = RunFolder(run_dir).results
    if path.is_file() and not cfg.get("resume") and not cfg.get("ckpt_path"):
        try:
            completed = RunResults.read(path).status == COMPLETED
        except UserInputError:
            completed = False
        if completed:
            raise UserInputError(f"{run_dir} holds a completed run; give a new hydra.run.dir, or resume=true to "
                                 "continue it for more epochs")


def remove_if_empty(folder: Path, stop_at: Path) -> None:
    """Remove ``folder`` if it is empty, then its parents below ``stop_at`` (the outputs folder) while empty."""
    folder, stop_at = Path(folder).resolve(), Path(stop_at).resolve()
    try:
        while folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
            if folder == stop_at or stop_at not in folder.parents:
                return
    except OSError:
        pass

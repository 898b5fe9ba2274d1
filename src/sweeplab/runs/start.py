"""Starting a run in its folder, only once everything it needs has been checked.

A command that is refused must leave a folder as it found it: a new folder is
removed again, an existing one (a run being resumed) is not written to. So the
``.hydra/`` files and ``train.log`` are written by :func:`start_run`, after the
checks, and never by Hydra (``hydra.output_subdir: null``, console-only job logging).

One process writes a run folder: :func:`run_folder_lock` takes ``RUN_DIR/.lock``
before anything is written (a run, a resume, a grid job, a sweep trial, a fold or refit
of a cross-validation: :func:`fit <sweeplab.runs.fit.fit>` takes it too) and gives it
back when the run ends, however it ends. A second process is refused in one line naming
the holder; a lock whose holder is a process of this host that no longer runs is taken over.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig

from sweeplab.cluster import current_job_record
from sweeplab.errors import UserInputError
from sweeplab.processes import process_identity, process_is_gone, process_start_time
from sweeplab.redact import redact_log_handler
from sweeplab.runs.checkpoints import check_resume
from sweeplab.runs.config_record import record_run_config
from sweeplab.runs.folder import LOCK_FILE, LOG_FILE, RunFolder
from sweeplab.runs.hparams import flat_hparams
from sweeplab.runs.results import COMPLETED, FAILED, RunResults

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
log = logging.getLogger(__name__)
_HELD: dict[Path, int] = {}  # run folders whose lock this process holds: how many holders nest (a run's fit)
Function = TypeVar("Function", bound=Callable[..., Any])


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
        self.handler = redact_log_handler(logging.FileHandler(self.run_dir / LOG_FILE))
        self.handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(self.handler)

    def close(self) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()


@contextmanager
def starting_run(
    cfg: DictConfig, run_dir: Path, hydra_node: DictConfig | None, overrides: Sequence[str], *, folder_is_new: bool
) -> Iterator[RunStart]:
    """Check what only the folder can tell (a resume, a finished run), then hand out the :class:`RunStart`
    that ``fit`` calls once everything is built, just before training.

    Whatever fails before that leaves the folder as it was: a folder this command made
    (``folder_is_new``) is removed again, an existing one is not written to.
    """
    start = RunStart(cfg, run_dir, hydra_node, overrides)
    for handler in logging.getLogger().handlers:  # the console's (Hydra's) too: no secret in what is shown
        redact_log_handler(handler)
    try:
        with run_folder_lock(run_dir):
            try:
                check_resume(cfg, run_dir)
                refuse_finished_run(cfg, run_dir)
                yield start
            finally:
                start.close()
    except BaseException:
        if folder_is_new and not start.started:
            remove_if_empty(run_dir, stop_at=Path(cfg.paths.output_dir))
        raise


def record_failed_job(
    cfg: DictConfig, run_dir: Path, hydra_node: DictConfig | None, overrides: Sequence[str], error: str
) -> None:
    """A grid job that could not run still leaves its config and a ``failed`` results.json: a row of the summary."""
    folder = RunFolder(run_dir)
    try:
        with run_folder_lock(folder.path):
            if folder.results.is_file():  # fit recorded it
                return
            record_run_config(folder.path, cfg, hydra_node, overrides)
            RunResults(
                status=FAILED, error=error, hparams=flat_hparams(cfg), seed=cfg.get("seed"), job=current_job_record()
            ).write(folder.results)
    except RunFolderBusy:  # another process writes the folder: it is not this job's
        return


def refuse_finished_run(cfg: DictConfig, run_dir: Path) -> None:
    """A folder holding a completed run is only written to by a resume of it."""
    path = RunFolder(run_dir).results
    if path.is_file() and not cfg.get("resume") and not cfg.get("ckpt_path"):
        try:
            completed = RunResults.read(path).status == COMPLETED
        except UserInputError:
            completed = False
        if completed:
            raise UserInputError(
                f"{run_dir} holds a completed run; give a new hydra.run.dir, or resume=true to "
                "continue it for more epochs"
            )


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


# --- one writer per run folder ------------------------------------------------------
class RunFolderBusy(UserInputError):
    """Another live process holds the run folder's lock."""


@contextmanager
def run_folder_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``RUN_DIR/.lock`` while the block runs (made with the folder when it is not there yet).

    Nested holders in one process share the lock (a run's ``fit`` inside ``train.py``'s start); the ranks
    of data-parallel training other than rank 0 (``LOCAL_RANK``, ``RANK``, ``SLURM_PROCID`` > 0) take none.
    Raises :class:`RunFolderBusy` when another live process holds it, :class:`UserInputError` for a lock
    file sweeplab cannot read.
    """
    folder = Path(run_dir).resolve()
    if folder in _HELD or _is_secondary_rank():
        _HELD[folder] = _HELD.get(folder, 0) + 1
        try:
            yield
        finally:
            _HELD[folder] -= 1
            if not _HELD[folder]:
                del _HELD[folder]
        return
    lock = _acquire(folder)
    _HELD[folder] = 1
    try:
        yield
    finally:
        del _HELD[folder]
        _release(lock)


def holding_run_folder(function: Function) -> Function:
    """``function(cfg, run_dir, ...)`` run holding ``run_dir``'s lock (:func:`run_folder_lock`)."""

    @functools.wraps(function)
    def holding(cfg: Any, run_dir: str | Path, *args: Any, **kwargs: Any) -> Any:
        with run_folder_lock(run_dir):
            return function(cfg, run_dir, *args, **kwargs)

    return holding  # type: ignore[return-value]


def _is_secondary_rank() -> bool:
    ranks = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")
    return any(os.environ.get(name, "0") not in ("", "0") for name in ranks)


def lock_holder_record() -> dict[str, Any]:
    """What this process writes into a lock it takes: pid, host, start time, since when, and its identity."""
    pid, host = os.getpid(), socket.gethostname()
    started = process_start_time(pid)
    return {
        "pid": pid,
        "host": host,
        "process_start": started,
        "process": process_identity(host, pid, started),
        "since": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
    }


def _acquire(folder: Path) -> Path:
    lock = folder / LOCK_FILE
    folder.mkdir(parents=True, exist_ok=True)
    record = lock_holder_record()
    for _ in range(3):  # a stale lock taken over by another process at the same instant: look again
        if _create_exclusively(lock, json.dumps(record) + "\n"):
            return lock
        text, holder = _read_holder(lock, folder)
        if not process_is_gone(holder["process"]):
            raise RunFolderBusy(
                f"run folder {folder} is being written by another process (pid {holder['pid']} on "
                f"{holder['host']}, since {holder['since']}; lock {lock}): wait for it to end, "
                "or give another hydra.run.dir"
            )
        if _remove_if_unchanged(lock, text):
            log.warning(
                "took over the lock of %s: its holder, pid %s on %s (since %s), no longer runs",
                folder,
                holder["pid"],
                holder["host"],
                holder["since"],
            )
    raise RunFolderBusy(f"run folder {folder}: could not take its lock {lock} (other processes keep taking it)")


def _create_exclusively(lock: Path, content: str) -> bool:
    """Make ``lock`` holding ``content`` unless it exists (no reader ever sees it half written): a temporary
    file hard-linked in place; where the file system has no hard links, an ``O_CREAT|O_EXCL`` file."""
    fd, tmp = tempfile.mkstemp(prefix=f"{LOCK_FILE}.", suffix=".tmp", dir=lock.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, lock)
            return True
        except FileExistsError:
            return False
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return True


def _read_holder(lock: Path, folder: Path) -> tuple[str, dict[str, Any]]:
    """The lock file's text and its holder; a one-line error for a lock file sweeplab did not write."""
    hint = f"if no run is writing {folder}, remove {lock}"
    if lock.is_dir():
        raise UserInputError(f"{lock} is a folder, not a lock file: {hint}")
    try:
        text = lock.read_text()
        holder = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not the JSON sweeplab writes"
        raise UserInputError(f"{lock} cannot be read as a run folder lock ({reason}): {hint}") from None
    fields = ("pid", "host", "since", "process")
    if not isinstance(holder, dict) or not all(isinstance(holder.get(key), (str, int)) for key in fields):
        raise UserInputError(f"{lock} cannot be read as a run folder lock (no {', '.join(fields)}): {hint}")
    return text, holder


def _remove_if_unchanged(lock: Path, text: str) -> bool:
    """Remove the stale ``lock`` if it still holds ``text`` (another process may have just taken it over)."""
    try:
        if lock.read_text() != text:
            return False
        lock.unlink()
    except FileNotFoundError:
        return False
    return True


def _release(lock: Path) -> None:
    """Remove the lock, if it is still this process's."""
    try:
        holder = json.loads(lock.read_text())
        if isinstance(holder, dict) and holder.get("process") == lock_holder_record()["process"]:
            lock.unlink()
    except (OSError, ValueError) as error:
        log.warning("could not release the lock %s: %s", lock, error)

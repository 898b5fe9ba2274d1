"""Errors a user can fix: they are reported in one line and exit with status 2. The exit codes of stops, too."""

from __future__ import annotations

import signal
from typing import Any

USER_ERROR_EXIT_CODE = 2
STOP_EXIT_CODE_BASE = 128  # a command stopped by signal N exits with 128 + N, as shells report it


def stop_exit_code(signum: int) -> int:
    """The exit code of a command stopped by ``signum``: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
    return STOP_EXIT_CODE_BASE + signal.Signals(signum).value


INTERRUPTED_EXIT_CODE = stop_exit_code(signal.SIGINT)  # Ctrl-C
TERMINATED_EXIT_CODE = stop_exit_code(signal.SIGTERM)  # SLURM, Kubernetes, timeout, kill PID


class UserInputError(Exception):
    """Bad input (a config value, a path, a missing file): refused before any work starts."""


class ConfigError(UserInputError):
    """An invalid config value; the message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is invalid: {allowed}")


class UserErrorExit(SystemExit):
    """A :class:`UserInputError` raised inside a library that would print its own traceback for it (Hydra, around
    a launcher's submission): a SystemExit goes through Hydra to the command's error boundary, which says the
    error in its one line."""

    def __init__(self, error: UserInputError) -> None:
        super().__init__(USER_ERROR_EXIT_CODE)
        self.error = error


class DataNotFoundError(UserInputError):
    """A dataset is neither on disk nor downloadable."""


class DataDamagedError(UserInputError):
    """A dataset's files are there but cannot be read (truncated, another format, labels out of range)."""


class RunStopped(Exception):
    """Raised by a callback that ends a run on purpose (a sweep's pruner): ``fit`` records the run with
    :attr:`status` and this message, as no failure, and raises it on to its caller. A subclass names
    its status, one of :data:`sweeplab.runs.results.STATUSES`."""

    status: str


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""

"""Errors a user can fix: they are reported in one line and exit with status 2."""

from __future__ import annotations

from typing import Any

USER_ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report a Ctrl-C


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

"""Errors a user can fix: they are reported in one line and exit with status 2."""

from __future__ import annotations

from typing import Any

USER_ERROR_EXIT_CODE = 2


class UserInputError(Exception):
    """Bad input (a config value, a path, a missing file): refused before any work starts."""


class ConfigError(UserInputError):
    """An invalid config value; the message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is invalid: {allowed}")


class DataNotFoundError(UserInputError):
    """A dataset is neither on disk nor downloadable."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""

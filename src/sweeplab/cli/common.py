"""What every command shares: where the configs are, and how user errors end a command."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from sweeplab.errors import USER_ERROR_EXIT_CODE, UserInputError

CONFIG_DIR = str(Path(__file__).resolve().parents[3] / "conf")


def _unique_suffix() -> str:
    """Part of a run folder's name that differs between processes started in the same second."""
    return f"{os.getpid()}"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("unique"):
        OmegaConf.register_new_resolver("unique", _unique_suffix, use_cache=True)


def exit_on_user_error(command: Callable) -> Callable:
    """Report :class:`UserInputError` as one line on stderr and exit with status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserInputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT_CODE)

    return wrapper

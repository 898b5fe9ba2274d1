"""What every command shares: how user errors end a command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from sweeplab.errors import USER_ERROR_EXIT_CODE, UserInputError


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

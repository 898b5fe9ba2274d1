"""The error boundary every command runs inside: one line for what the user can fix, a report for a bug.

A failure the user caused (a config value, a missing or damaged file, a path that
cannot be written, a full disk) ends the command with one line, ``error: ...``, and
exit status 2. Anything else is a bug (in sweeplab, or in code it ran, such as a
user's callback): its traceback is shown, and kept in an ``error.txt`` whose path the
last line gives, with exit status 1. A stop (SIGINT, SIGTERM, SIGHUP: :mod:`sweeplab.stops`)
is neither: no traceback, no ``error.txt``, one line saying how to resume, and exit status
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import functools
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from sweeplab.errors import USER_ERROR_EXIT_CODE, UserErrorExit, UserInputError, stop_exit_code
from sweeplab.redact import redact_text, remember_secrets
from sweeplab.stops import stop_line, stop_signal_of, stopping_cleanly

BUG_EXIT_CODE = 1
BUG_REPORT_DIR: list[Path] = []
OS_ERROR_HINTS: dict[int | None, str] = {
    errno.ENOSPC: "the disk is full: free some space or set paths.output_dir to another disk",
    errno.EDQUOT: "the disk quota is full: free some space or set paths.output_dir to another disk",
    errno.EACCES: "no permission to write there: set paths.output_dir to a folder you can write",
    errno.EROFS: "a read-only file system: set paths.output_dir to a folder you can write",
    errno.ENOTDIR: "a file stands where a folder must be",
}  # where a bug's traceback goes: the run folder, once a command knows it


class ArgumentParser(argparse.ArgumentParser):
    """argparse, refusing bad arguments in the one ``error:`` line of every command (not usage and a line)."""

    def error(self, message: str) -> NoReturn:
        raise UserInputError(f"{message}; see python {self.prog} --help")


def user_error_message(error: BaseException) -> str | None:
    """The one line for a failure the user can fix, or None for a bug."""
    if isinstance(error, UserInputError):
        return str(error)
    if isinstance(error, OSError):  # the output path: read-only, a file, a full disk...
        where = f"{error.filename}: " if error.filename else ""
        hint = OS_ERROR_HINTS.get(error.errno, "")
        return f"{where}{error.strerror or error}{f' ({hint})' if hint else ''}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        return " ".join(str(error).split("\n")[0].split()) or type(error).__name__
    cause = error.__cause__ or error.__context__
    return user_error_message(cause) if isinstance(cause, (UserInputError, OSError)) else None


def report_bug(error: BaseException) -> Path | None:
    """Write the traceback of ``error`` to ``error.txt`` (the run folder, else the temporary folder)."""
    text = redact_text("".join(traceback.format_exception(error)))
    for folder in [*BUG_REPORT_DIR[-1:], Path(tempfile.gettempdir())]:
        name = "error.txt" if folder in BUG_REPORT_DIR else f"sweeplab-error-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        try:
            path = folder / name
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def exit_for(error: BaseException) -> NoReturn:
    """End the command for ``error``: one line and status 2 for the user's, one line and 128 + the signal's number
    for a stop, a bug report and status 1 else."""
    if isinstance(error, UserErrorExit):  # a user's error, carried through a library's own boundary
        error = error.error
    stop = stop_signal_of(error)  # before SystemExit: Lightning ends a stop with SystemExit(1)
    if stop is not None:
        print(stop_line(stop), file=sys.stderr)
        sys.exit(stop_exit_code(stop))
    if isinstance(error, SystemExit):
        raise error
    message = user_error_message(error)
    if message is not None:
        print(redact_text(f"error: {message}"), file=sys.stderr)
        sys.exit(USER_ERROR_EXIT_CODE)
    print(redact_text("".join(traceback.format_exception(error))), end="", file=sys.stderr)
    path = report_bug(error)
    print(
        redact_text(f"error: unexpected failure ({type(error).__name__}: {error})") + ": a bug in sweeplab, or in "
        f"code it ran, not in your input; the traceback is above{f' and in {path}' if path else ''}",
        file=sys.stderr,
    )
    sys.exit(BUG_EXIT_CODE)


def command(main: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``main`` inside the error boundary, stop signals stopping it cleanly: its result when it succeeds,
    :func:`exit_for` when it fails or is stopped."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> Any:
        remember_secrets([*sys.argv[1:], *(a for arg in args if isinstance(arg, (list, tuple)) for a in arg)])
        with stopping_cleanly():
            try:
                return main(*args, **kwargs)
            except BaseException as error:  # noqa: BLE001 (the boundary: every failure ends here)
                exit_for(error)

    return run

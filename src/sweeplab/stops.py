"""Stop signals, for every command: SIGINT (Ctrl-C), SIGTERM (SLURM, Kubernetes, ``timeout``, ``kill PID``) and
SIGHUP (a closed terminal) stop a command cleanly, with the exit code ``128 + the signal's number``.

One handler serves train.py, its grids, cross-validation, sweep.py and its worker
processes, and the readers (compare, predict, visualize): the first stop signal
raises :class:`Stopped` (a :class:`KeyboardInterrupt`, so Optuna records the trial in
hand as failed, and Lightning tears its trainer down); repeats are ignored while the
stop is recorded; ``kill -9`` still stops at once. The command's error boundary
(:mod:`sweeplab.cli.common`) turns the stop into its exit code and one line saying how
to resume (:func:`say_how_to_resume`), never a traceback.

An exception raised by a signal handler is lost when the signal lands in a finalizer
("Exception ignored in ..."), and Lightning turns a :class:`KeyboardInterrupt` into
``SystemExit(1)``: the signal is remembered (:func:`received`), so the stop is still
known for what it is (:func:`stop_signal_of`), and loops stop after the step in hand
(:func:`stop_if_signalled`). A SIGHUP that was ignored when the command started (``nohup``)
stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from sweeplab.errors import stop_exit_code

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SAME_COMMAND_AGAIN = "run the same command again"


class Stopped(KeyboardInterrupt):
    """A command stopped by a signal; :attr:`exit_code` is ``128 + its number``."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(f"stopped by {self.signal.name}")

    @property
    def exit_code(self) -> int:
        return stop_exit_code(self.signal)


class InterruptOnce:
    """A signal handler raising :class:`Stopped` for the first stop signal only."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    @property
    def received(self) -> str | None:
        """The name of the signal received (``"SIGTERM"``), None before any."""
        return self.signal.name if self.signal is not None else None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            return
        self.signal = signal.Signals(signum)
        raise Stopped(signum)


_HANDLER = InterruptOnce()  # one per process, as signal handlers are
_RESUME_HINT: list[str] = []  # what the command says to resume, once it knows (the last one said counts)


def stop_cleanly_on_signals() -> None:
    """Install :class:`InterruptOnce` for the stop signals (from the main thread; elsewhere nothing is done)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
            continue  # nohup: a closed terminal must not stop it
        signal.signal(signum, _HANDLER)


@contextmanager
def stopping_cleanly() -> Iterator[None]:
    """:func:`stop_cleanly_on_signals` for the duration of a command; the handlers before it come back after
    (a command called in-process, by a test say, leaves the caller's handlers as they were)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _HANDLER.signal = None
    _RESUME_HINT.clear()
    stop_cleanly_on_signals()
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:
                signal.signal(signum, handler)


def received() -> signal.Signals | None:
    """The stop signal this process received, None when none was."""
    return _HANDLER.signal


def stop_signal_of(error: BaseException) -> signal.Signals | None:
    """The stop signal behind ``error``: a :class:`Stopped` in its chain, a stop this process received (Lightning
    ends a Ctrl-C with ``SystemExit(1)``), or SIGINT for a bare :class:`KeyboardInterrupt`; None for any other."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, Stopped):
            return cause.signal
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if received() is not None:
        return received()
    return signal.SIGINT if isinstance(error, KeyboardInterrupt) else None


def exit_code_of_stop() -> int:
    """The exit code for the stop this process received (SIGINT's when it got none: a bare Ctrl-C)."""
    return stop_exit_code(received() or signal.SIGINT)


def is_stop_exit_code(code: int | None) -> bool:
    """Whether a process's exit code says it was stopped by one of :data:`STOP_SIGNALS`."""
    return code is not None and code in {stop_exit_code(signum) for signum in STOP_SIGNALS}


def stop_if_signalled(*_: object) -> None:
    """Raise :class:`Stopped` if this process got a stop signal; usable as an Optuna callback."""
    if _HANDLER.signal is not None:
        raise Stopped(_HANDLER.signal)


def say_how_to_resume(hint: str) -> None:
    """What the command's last line says to resume it when it is stopped (the latest hint replaces earlier ones)."""
    _RESUME_HINT[:] = [hint]


def stop_line(signum: signal.Signals) -> str:
    """The one line a stopped command ends with."""
    hint = _RESUME_HINT[-1] if _RESUME_HINT else f"to resume, {SAME_COMMAND_AGAIN}"
    return f"interrupted by {signal.Signals(signum).name}: {hint}"

"""SIGTERM stops a sweep as Ctrl-C does, and neither signal interrupts the recording of the stop.

A job scheduler, ``kill PID`` or ``docker stop`` send SIGTERM; Python's default
would end the process on the spot, leaving the running trial RUNNING until its
heartbeat goes stale. Raising :class:`KeyboardInterrupt` instead lets the trial be
recorded as failed (and queued to run again), and the command end with its
"run the same command again" line. A second signal (a repeated Ctrl-C, or the
SIGTERM the main process forwards to its workers) is ignored while that happens;
``kill -9`` still stops at once, and the heartbeat recovers that trial.

An exception raised by a signal handler is lost when the signal lands in a
finalizer ("Exception ignored in ..."); the signal is remembered, so the workers
still stop after the trial in hand (:func:`stop_if_signalled`).
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESUME_HINT = "sweep interrupted; run the same command again to resume it"


class InterruptOnce:
    """A signal handler raising :class:`KeyboardInterrupt` for the first stop signal only."""

    def __init__(self) -> None:
        self.received: str | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signal.Signals(signum).name
        raise KeyboardInterrupt(f"stopped by {self.received}")


_HANDLER = InterruptOnce()  # one per process, as signal handlers are


def stop_cleanly_on_signals() -> None:
    """Install :class:`InterruptOnce` for SIGINT and SIGTERM (call it from the main thread)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _HANDLER)


def stop_if_signalled(*_: object) -> None:
    """Raise :class:`KeyboardInterrupt` if this process got a stop signal; usable as an Optuna callback."""
    if _HANDLER.received is not None:
        raise KeyboardInterrupt(f"stopped by {_HANDLER.received}")

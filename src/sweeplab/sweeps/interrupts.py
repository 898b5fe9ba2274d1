"""What a stopped sweep says: the stop signals themselves are :mod:`sweeplab.stops`'s, as for every command.

A job scheduler, ``kill PID`` or ``docker stop`` send SIGTERM, a terminal's Ctrl-C
SIGINT: the running trial is recorded as failed (and queued to run again), and the
command ends with the signal's exit code and :data:`RESUME_HINT`.
"""

from __future__ import annotations

from sweeplab.stops import SAME_COMMAND_AGAIN, InterruptOnce, stop_cleanly_on_signals, stop_if_signalled

RESUME_HINT = f"sweep interrupted; {SAME_COMMAND_AGAIN} to resume it"

__all__ = ["RESUME_HINT", "InterruptOnce", "stop_cleanly_on_signals", "stop_if_signalled"]

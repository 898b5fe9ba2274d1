"""Which process this is, and whether a process named so still runs: ``host:pid:start``.

``start`` is the process's start time (in clock ticks since boot, from ``/proc``), so a
process id the system has given again to a new process is not taken for the old one.
Sweep trials record their worker so (:mod:`sweeplab.sweeps.liveness`), and so does the
lock of a run folder (:mod:`sweeplab.runs.start`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where /proc is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name may hold spaces


def this_process() -> str:
    """``host:pid:start`` of this process."""
    pid = os.getpid()
    return process_identity(socket.gethostname(), pid, process_start_time(pid))


def process_identity(host: str, pid: int, started: str | None) -> str:
    return f"{host}:{pid}:{started or ''}"


def process_is_gone(identity: str | None) -> bool:
    """Whether ``identity`` (:func:`this_process` of some process) names a process of this host that no longer
    runs: its pid is gone, or is now another process's (another start time). Other hosts' are never known gone."""
    if not identity:
        return False
    host, _, rest = identity.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive
        pass
    except (OverflowError, OSError):  # no such pid can exist
        return True
    return bool(started) and process_start_time(pid) not in (None, started)

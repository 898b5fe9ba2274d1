"""Which process runs a trial, and whether it still exists: dead workers are noticed at once.

Every trial records the worker that runs it as ``host:pid:start`` (``start``: the
process's start time, so a reused process id is not taken for the old worker). When a
study is opened again on the same host, a RUNNING trial whose worker is gone was
killed (``kill -9``, a crash, a reboot) and is failed and retried at once; trials of
workers on other hosts are left to Optuna's heartbeat. A worker that runs as a SLURM job
also records its job and attempt (:func:`this_cluster_job`): its trial is dead once the
job has ended, or SLURM has restarted the job (a requeue kills every process of the
earlier attempt) wherever it runs now.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from sweeplab.cluster import current_job


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where /proc is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name may hold spaces


def this_worker() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def worker_is_gone(identity: str | None) -> bool:
    """Whether ``identity`` (:func:`this_worker` of some process) names a process of this host that no longer runs."""
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
    return bool(started) and _start_time(pid) not in (None, started)


def this_cluster_job() -> dict[str, Any] | None:
    """``{"id", "restarts"}`` of the SLURM job this worker runs in, or None outside SLURM."""
    job = current_job()
    return None if job is None else {"id": job.id, "restarts": job.restarts}


def job_left_it(recorded: Mapping[str, Any] | None, ended_jobs: Collection[str] = ()) -> bool:
    """Whether the SLURM job attempt ``recorded`` (:func:`this_cluster_job` of a trial's worker) is over:
    its job is in ``ended_jobs``, or it is this process's job in an earlier attempt."""
    if not isinstance(recorded, Mapping) or not recorded.get("id"):
        return False
    job = current_job()
    restarted = job is not None and job.id == recorded["id"] and job.restarts > int(recorded.get("restarts", 0))
    return recorded["id"] in ended_jobs or restarted

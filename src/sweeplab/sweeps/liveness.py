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

from collections.abc import Collection, Mapping
from typing import Any

from sweeplab.cluster import current_job
from sweeplab.processes import process_is_gone, this_process


def this_worker() -> str:
    """``host:pid:start`` of this worker (:func:`sweeplab.processes.this_process`)."""
    return this_process()


def worker_is_gone(identity: str | None) -> bool:
    """Whether ``identity`` (:func:`this_worker` of some process) names a process of this host that no longer runs."""
    return process_is_gone(identity)


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

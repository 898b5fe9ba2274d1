"""SLURM jobs: the one this process runs in (read from the variables SLURM sets, without importing torch),
and whether a job this process submitted has ended.

A run records its job (:func:`current_job`: ``results.json``'s ``job``), uses the CPU
cores SLURM gave it (:func:`use_allotted_cpus`: a node's other cores belong to other
jobs), and knows when SLURM started it again. A job that SLURM requeues (preempted,
its time limit reached with requeue on, ``scontrol requeue``) runs its script again
from the top with the same job id and ``SLURM_RESTART_COUNT`` counting the restarts:
a run then continues from its last checkpoint in the same folder
(:func:`sweeplab.runs.checkpoints.resume_if_requeued`), a sweep worker fails and
retries the trial its previous attempt left running.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sweeplab.errors import UserInputError


@dataclass(frozen=True)
class ClusterJob:
    """One SLURM job (an array task is a job of its own: ``1234_5``)."""

    scheduler: str
    id: str
    restarts: int  # how many times SLURM requeued and restarted it
    node: str | None
    cpus: int | None  # CPU cores per task it was given (--cpus-per-task), None when not set

    @property
    def requeued(self) -> bool:
        return self.restarts > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def current_job_record() -> dict[str, Any] | None:
    """This process's job as ``results.json`` records it (``job``), None outside SLURM."""
    job = current_job()
    return job.to_dict() if job is not None else None


def current_job(environ: Mapping[str, str] = os.environ) -> ClusterJob | None:
    """The SLURM job of this process, or None outside SLURM."""
    job_id = environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    array, task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    cpus = environ.get("SLURM_CPUS_PER_TASK", "")
    return ClusterJob(
        scheduler="slurm",
        id=f"{array}_{task}" if array and task else job_id,
        restarts=int(environ.get("SLURM_RESTART_COUNT", "0") or 0),
        node=environ.get("SLURMD_NODENAME"),
        cpus=int(cpus) if cpus.isdigit() else None,
    )


def use_allotted_cpus() -> None:
    """Run torch's CPU threads on the cores SLURM gave the job, unless OMP_NUM_THREADS says otherwise
    (torch would start one thread per core of the node, and crowd the node's other jobs)."""
    job = current_job()
    if job is None or job.cpus is None or os.environ.get("OMP_NUM_THREADS"):
        return
    import torch  # noqa: PLC0415 (only inside a job)

    torch.set_num_threads(job.cpus)


def missing_scheduler() -> str | None:
    """Why jobs cannot be submitted to SLURM from here, or None when they can."""
    if shutil.which("sbatch") is None:
        return (
            "sbatch is not installed here: submit from a SLURM login node (make slurm-up starts a one-node "
            "cluster on this machine)"
        )
    return None


class WithoutAccounting(logging.Filter):
    """Drop submitit's "Bypassing sacct error" warnings, saying once why they came: a cluster without
    SLURM accounting (``make slurm-up``'s) has no sacct, so submitit learns that a job ended from the
    result file the job writes, and would warn at every poll."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if not self.said:
            self.said = True
            logging.getLogger(__name__).info(
                "sacct gives no job states here (SLURM accounting is off): submitit "
                "waits for each job's result file; this is harmless"
            )
        return False


def quiet_missing_accounting() -> None:
    """Install :class:`WithoutAccounting` on submitit's logger (once)."""
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, WithoutAccounting) for f in logger.filters):
        logger.addFilter(WithoutAccounting())


SUBMITIT_GENERIC = (
    "timeout_min",
    "cpus_per_task",
    "gpus_per_node",
    "tasks_per_node",
    "mem_gb",
    "nodes",
    "name",
    "stderr_to_stdout",
)  # the parameters every submitit executor takes under these names
EXECUTOR_ARGUMENTS = ("submitit_folder", "max_num_timeout")  # the executor's own, not a job's parameters


def submitit_parameters(settings: Mapping[str, Any], executor: str) -> dict[str, Any]:
    """Job settings (``conf/hydra/launcher/slurm.yaml``'s names, ``sweep.cluster``'s) in submitit's words:
    generic names as they are, SLURM's with ``slurm_`` before them (the local executor takes the generic
    ones only); unset values (None, empty) are left to submitit's defaults."""
    chosen = {
        key: value for key, value in settings.items() if value not in (None, {}, []) and key not in EXECUTOR_ARGUMENTS
    }
    if executor == "local":
        return {key: value for key, value in chosen.items() if key in SUBMITIT_GENERIC}
    return {key if key in SUBMITIT_GENERIC else f"{executor}_{key}": value for key, value in chosen.items()}


def submitit_executor(folder: str | os.PathLike, executor: str, settings: Mapping[str, Any]) -> Any:
    """A submitit executor (``slurm`` or ``local``) writing into ``folder``, with ``settings`` for its jobs
    (``max_num_timeout``: how many times SLURM requeues a job that ran out of time)."""
    import submitit  # noqa: PLC0415 (an extra)

    timeouts = settings.get("max_num_timeout")
    init = {"slurm_max_num_timeout": timeouts} if executor == "slurm" and timeouts is not None else {}
    made = submitit.AutoExecutor(folder=Path(folder), cluster=executor, **init)
    made.update_parameters(**submitit_parameters(settings, executor))
    return made


@contextmanager
def refused_submission_is_user_error() -> Iterator[None]:
    """sbatch refusing the jobs (an unknown partition, too much memory, no controller) is about the
    user's settings or cluster: a :class:`UserInputError` in sbatch's own words, not a traceback."""
    import submitit  # noqa: PLC0415 (an extra)

    try:
        yield
    except submitit.core.utils.FailedJobError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise UserInputError(f"SLURM refused the jobs: {'; '.join(lines) or type(error).__name__}") from None


def ended(jobs: Sequence[Any]) -> list[Any]:
    """The submitit jobs of ``jobs`` that have ended: their result file is written, or SLURM no longer lists
    them (cancelled, killed, out of memory: on a cluster without accounting submitit alone would wait for
    them forever). One ``squeue`` call for all of them."""
    done = [job for job in jobs if job.done()]
    slurm = [job for job in jobs if job not in done and type(job).__name__ == "SlurmJob"]
    queued = _in_queue([job.job_id for job in slurm]) if slurm else set()
    return done + [job for job in slurm if queued is not None and job.job_id not in queued]


def _in_queue(job_ids: Sequence[str]) -> set[str] | None:
    """The jobs of ``job_ids`` SLURM still lists (pending, running, being requeued); None when squeue cannot tell."""
    try:
        listed = subprocess.run(
            ["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%i"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return set(listed)


def ended_without_result(job: Any) -> str | None:
    """Why a job that has ended left no result (its error, or that it was killed), or None when it did."""
    import submitit  # noqa: PLC0415 (an extra)

    if not job.done():  # ended: SLURM dropped it, and asking submitit for its result would wait forever
        return "it left SLURM's queue without a result (cancelled, killed, or out of memory or time)"
    try:
        job.result()
    except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError) as error:
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        return lines[-1] if lines else type(error).__name__
    return None

"""A study's workers as SLURM jobs (``sweep.launcher=slurm``), submitted through submitit.

The study is created in its storage before any job starts (:func:`open_study` in
the sweep session, :func:`~sweeplab.sweeps.session.run_study`), so that workers never race to create it.
Each of the K jobs then runs :func:`~sweeplab.sweeps.workers.worker_entry` on that
storage, as a local worker process does, until ``n_trials`` trials have finished. The
storage must be one that every node reaches: PostgreSQL, or Optuna's journal file on a
shared filesystem (the default: ``<sweep dir>/study.journal``).

A job that SLURM requeues (preempted; its time limit reached, when submitit requeues it
up to ``sweep.cluster.max_num_timeout`` times; ``scontrol requeue``) starts its worker
again: it fails the trial its earlier attempt left running, which is queued to run once
more, so each of the ``n_trials`` places is filled by one finished trial. submitit's files
and each job's log: ``<sweep dir>/.submitit/<job id>/``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import submitit

from sweeplab.cluster import (
    ended,
    ended_without_result,
    quiet_missing_accounting,
    refused_submission_is_user_error,
    submitit_executor,
)
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.study import fail_dead_trials, load_existing_study
from sweeplab.sweeps.trials import count_trials
from sweeplab.sweeps.workers import worker_entry

log = logging.getLogger(__name__)

SUBMITIT_DIR = ".submitit"
EXECUTORS = {"slurm": "slurm", "slurm_local": "local"}
POLL_S = 5.0  # how often the jobs and the study are looked at while waiting


class ClusterWorker:
    """What one worker job runs (pickled by submitit); :meth:`checkpoint` lets submitit requeue it."""

    def __init__(self, plan: SweepPlan, workers: int) -> None:
        self.plan, self.workers = plan, workers

    def __call__(self, worker_index: int) -> int:
        return worker_entry(self.plan, worker_index, self.workers)

    def checkpoint(self, worker_index: int) -> submitit.helpers.DelayedSubmission:
        """On a time limit or preemption: run the worker again (the study holds its progress)."""
        return submitit.helpers.DelayedSubmission(self, worker_index)


def submit_workers(plan: SweepPlan, workers: int) -> list[submitit.Job]:
    """Submit ``workers`` worker jobs (one job array) on the plan's study."""
    settings = plan.settings
    executor = submitit_executor(
        plan.study_dir / SUBMITIT_DIR / "%j",
        EXECUTORS[settings.launcher],
        {**settings.cluster, "name": f"sweep-{settings.study_name}"},
    )
    worker = ClusterWorker(plan, workers)
    with refused_submission_is_user_error(), executor.batch():
        jobs = [executor.submit(worker, index) for index in range(workers)]
    log.info(
        "submitted %d worker jobs (%s): %s; their logs: %s",
        workers,
        settings.launcher,
        " ".join(job.job_id for job in jobs),
        plan.study_dir / SUBMITIT_DIR,
    )
    return jobs


def run_cluster_workers(plan: SweepPlan, workers: int) -> list[int]:
    """Submit the worker jobs; with ``sweep.wait`` wait for them and return their exit codes, else return []."""
    quiet_missing_accounting()
    jobs = submit_workers(plan, workers)
    if not plan.settings.wait:
        print(not_waiting_note(plan, jobs))
        return []
    try:
        return wait_for_jobs(plan, jobs)
    except KeyboardInterrupt:
        print(
            f"stopped waiting; the jobs go on (cancel them: scancel {' '.join(job.job_id for job in jobs)}); "
            f"report: {report_command(plan)}",
            file=sys.stderr,
        )
        raise


def wait_for_jobs(plan: SweepPlan, jobs: Sequence[submitit.Job]) -> list[int]:
    """Wait until every job has ended, saying how the study goes whenever that changes; returns the exit codes
    (1 for a job that ended without a result: killed, cancelled, out of memory). Trials left running by such
    jobs are failed and queued to run again, so that running the command again finishes the study."""
    shown, finished = "", set[str]()
    while len(finished) < len(jobs):
        time.sleep(POLL_S)
        finished |= {job.job_id for job in ended([job for job in jobs if job.job_id not in finished])}
        progress = study_progress(plan)
        if progress != shown:
            log.info("%s; jobs ended: %d of %d", progress, len(finished), len(jobs))
            shown = progress
    fail_dead_trials(load_existing_study(plan.settings, plan.storage_url), ended_jobs=finished)
    return [exit_code(job) for job in jobs]


def exit_code(job: submitit.Job) -> int:
    """The worker's exit code; 1 for a job that ended without one (its reason is logged)."""
    reason = ended_without_result(job)
    if reason is not None:
        log.error("job %s ended without finishing: %s (its log: %s)", job.job_id, reason, job.paths.stderr)
        return 1
    return int(job.result())


def study_progress(plan: SweepPlan) -> str:
    counts = count_trials(load_existing_study(plan.settings, plan.storage_url).get_trials(deepcopy=False))
    return (
        f"study {plan.settings.study_name}: {counts.finished} of {plan.settings.n_trials} trials finished, "
        f"{counts.running} running, {counts.failed} failed"
    )


def report_command(plan: SweepPlan) -> str:
    return f"python sweep.py {' '.join(plan.command_line)} sweep.report_only=true"


def not_waiting_note(plan: SweepPlan, jobs: Sequence[submitit.Job]) -> str:
    ids = " ".join(job.job_id for job in jobs)
    return (
        f"submitted {len(jobs)} worker jobs: {ids}\n"
        f"  follow them: squeue -j {','.join(job.job_id for job in jobs)}; their logs: "
        f"{Path(plan.study_dir) / SUBMITIT_DIR}/<job id>/\n"
        f"  report once they end: {report_command(plan)}"
    )

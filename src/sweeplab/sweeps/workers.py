"""Worker processes that run a study's trials until ``n_trials`` of them have finished.

``sweep.workers=K`` starts K processes (multiprocessing, spawn) on the same storage,
or K SLURM jobs with ``sweep.launcher=slurm`` (:mod:`sweeplab.sweeps.cluster_workers`);
several ``sweep.py`` commands on other machines may share a PostgreSQL or journal
study the same way. A worker stops asking for trials once finished + running trials fill
``n_trials`` (Optuna's ``MaxTrialsCallback`` counting complete, pruned and running
trials), counting them under the storage's lock before each trial is created
(:class:`AskGate`), so no trial is created only to stand back untrained. So the study
ends with exactly ``n_trials`` finished trials, each in its own folder ``trial_NNNN``
(the trial's unique number).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.cluster import current_job, use_allotted_cpus
from sweeplab.errors import USER_ERROR_EXIT_CODE, UserInputError
from sweeplab.stops import exit_code_of_stop, stop_cleanly_on_signals, stop_if_signalled
from sweeplab.sweeps.log_setup import LOG_FILE, configure_sweep_logging
from sweeplab.sweeps.objective import SurplusTrial, TrialFailed, TrialObjective
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.study import creation_lock, open_study
from sweeplab.sweeps.trials import is_surplus, places_left

log = logging.getLogger(__name__)


class StopAfterFailures:
    """Stop a worker after ``limit`` failed trials in a row: something is broken, not unlucky."""

    def __init__(self, limit: int) -> None:
        self.limit, self.in_a_row = limit, 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if is_surplus(trial):
            return
        self.in_a_row = self.in_a_row + 1 if trial.state == TrialState.FAIL else 0
        if self.stopped:
            log.error("%d trials failed in a row (the last: trial %d); this worker stops", self.in_a_row, trial.number)
            study.stop()

    @property
    def stopped(self) -> bool:
        return self.in_a_row >= self.limit


class AskGate:
    """The storage's lock, held from counting the places left until the next trial exists.

    Optuna creates a trial (``study.ask``) before calling the objective; two workers
    asking in the same instant could both take the last place. Under this lock a worker
    asks only when a place is left, and releases it as the objective starts, so no
    trial is created in vain (storages without a lock: see :mod:`sweeplab.sweeps.trials`).
    """

    def __init__(self, storage_url: str) -> None:
        self.storage_url, self._held = storage_url, ExitStack()

    def hold(self) -> None:
        self._held.enter_context(creation_lock(self.storage_url))

    def release(self) -> None:
        self._held.close()


class _ReleasingObjective:
    """The trial objective, releasing the ask gate first (the trial exists once it is called)."""

    def __init__(self, gate: AskGate, objective: TrialObjective) -> None:
        self.gate, self.objective = gate, objective

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.gate.release()
        return self.objective(trial)


def run_worker(plan: SweepPlan, worker_index: int = 0) -> None:
    """Run trials of the study, one at a time, until its ``n_trials`` places are taken (Optuna's
    ``MaxTrialsCallback`` counting finished and running trials, checked before each trial is created)."""
    settings = plan.settings
    study = open_study(settings, plan.storage_url, seed_parts=(worker_index,))
    failures, gate = StopAfterFailures(settings.max_failures), AskGate(plan.storage_url)
    objective = _ReleasingObjective(gate, TrialObjective(plan))
    while not failures.stopped:
        gate.hold()
        try:
            if places_left(study, settings.n_trials) == 0:
                log.info("worker %d: all %d places are finished or running", worker_index, settings.n_trials)
                return
            study.optimize(
                objective,
                n_trials=1,
                callbacks=[failures, stop_if_signalled],
                catch=(TrialFailed, SurplusTrial),
                gc_after_trial=True,
            )
        finally:
            gate.release()


def run_workers(plan: SweepPlan, workers: int) -> list[int]:
    """Run ``workers`` worker processes to the end; one worker runs in this process.

    Returns the workers' exit codes (0 each when all went well).
    """
    if workers <= 1:
        run_worker(plan, 0)
        return [0]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(plan, index, workers), name=f"sweep-worker-{index}")
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    log.info("started %d workers (pids %s)", workers, ", ".join(str(p.pid) for p in processes))
    try:
        _wait_for(processes)
    except KeyboardInterrupt:  # Ctrl-C reached the workers too; a SIGTERM to this process alone did not
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: a worker already stopping ignores it
        for process in processes:
            process.join()
        raise
    return [cast(int, process.exitcode) for process in processes]  # every worker has ended: its exit code is set


def _wait_for(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Wait for the workers to end, checking every second for a stop signal this process got."""
    while alive := [process.sentinel for process in processes if process.is_alive()]:
        multiprocessing.connection.wait(alive, timeout=1.0)
        stop_if_signalled()
    for process in processes:
        process.join()


def _worker_main(plan: SweepPlan, worker_index: int, workers: int) -> None:
    """The entry point of a spawned worker process."""
    try:
        sys.exit(worker_entry(plan, worker_index, workers))
    except KeyboardInterrupt:
        sys.exit(exit_code_of_stop())  # 128 + the signal's number, as the main process exits


def worker_entry(plan: SweepPlan, worker_index: int, workers: int) -> int:
    """What a worker in a process of its own runs (spawned here, or a cluster's job): set up the
    process, run trials; returns the exit code. A stop signal raises :class:`KeyboardInterrupt`."""
    from sweeplab.config.resolvers import register_resolvers  # noqa: PLC0415 (a fresh interpreter)

    stop_cleanly_on_signals()
    register_resolvers()
    configure_sweep_logging(plan.study_dir / LOG_FILE, worker=worker_index)
    if current_job() is not None:
        use_allotted_cpus()
    else:
        _share_cpu_threads(workers)
    try:
        run_worker(plan, worker_index)
    except UserInputError as error:
        log.error("%s", error)
        return USER_ERROR_EXIT_CODE
    return 0


def _share_cpu_threads(workers: int) -> None:
    """Split the CPU cores between the workers, unless OMP_NUM_THREADS already says how many."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    import torch  # noqa: PLC0415

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

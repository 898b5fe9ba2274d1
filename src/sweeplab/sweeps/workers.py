"""Worker processes that run a study's trials until ``n_trials`` of them have finished.

``sweep.workers=K`` starts K processes (multiprocessing, spawn) on the same storage,
or K SLURM jobs with ``sweep.launcher=slurm`` (:mod:`sweeplab.sweeps.cluster_workers`);
several ``sweep.py`` commands on other machines may share a PostgreSQL or journal
study the same way. A worker stops asking for trials once finished + running trials fill
``n_trials`` (Optuna's ``MaxTrialsCallback`` counting complete, pruned and running
trials), and a trial that still starts one too many stands back untrained (see
:meth:`TrialObjective._claim_place`). So the study ends with exactly ``n_trials``
finished trials, each in its own folder ``trial_NNNN`` (the trial's unique number).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import sys

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from sweeplab.cluster import current_job, use_allotted_cpus
from sweeplab.errors import INTERRUPTED_EXIT_CODE, USER_ERROR_EXIT_CODE, UserInputError
from sweeplab.sweeps.interrupts import stop_cleanly_on_signals, stop_if_signalled
from sweeplab.sweeps.log_setup import LOG_FILE, configure_sweep_logging
from sweeplab.sweeps.objective import SurplusTrial, TrialFailed, TrialObjective, is_surplus
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.study import TAKEN, open_study, places_left

log = logging.getLogger(__name__)


class StopAfterFailures:
    """Stop a worker after ``limit`` failed trials in a row: something is broken, not unlucky."""

    def __init__(self, limit: int) -> None:
        self.limit, self.in_a_row = limit, 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if is_surplus(trial):
            return
        self.in_a_row = self.in_a_row + 1 if trial.state == TrialState.FAIL else 0
        if self.in_a_row >= self.limit:
            log.error("%d trials failed in a row (the last: trial %d); this worker stops", self.in_a_row, trial.number)
            study.stop()


def run_worker(plan: SweepPlan, worker_index: int = 0) -> None:
    """Run trials of the study until its ``n_trials`` places are taken."""
    settings = plan.settings
    study = open_study(settings, plan.storage_url, seed_parts=(worker_index,))
    if places_left(study, settings.n_trials) == 0:
        log.info("worker %d: all %d places are finished or running", worker_index, settings.n_trials)
        return
    study.optimize(
        TrialObjective(plan),
        callbacks=[MaxTrialsCallback(settings.n_trials, states=TAKEN), StopAfterFailures(settings.max_failures),
                   stop_if_signalled],
        catch=(TrialFailed, SurplusTrial),
        gc_after_trial=True,
    )


def run_study(plan: SweepPlan) -> list[int]:
    """Run the study's missing trials with up to ``sweep.workers`` workers; returns their exit codes."""
    settings = plan.settings
    study = open_study(settings, plan.storage_url)
    _refuse_foreign_trial_folders(study, plan)
    left = places_left(study, settings.n_trials)
    if left == 0:
        log.info("study %s: all %d trials are finished or running; nothing to add", settings.study_name, settings.n_trials)
        return []
    log.info("study %s: %d of %d places left", settings.study_name, left, settings.n_trials)
    if settings.multi_objective and settings.pruner["name"] != "none":
        log.info("pruning is off: Optuna's pruners follow one objective (this study has %d); the %d trials run to "
                 "the end", len(settings.metrics), left)
    if settings.launcher != "local":
        from sweeplab.sweeps.cluster_workers import run_cluster_workers  # noqa: PLC0415 (submitit: an extra)

        return run_cluster_workers(plan, min(settings.workers, left))
    return run_workers(plan, min(settings.workers, left))


def _refuse_foreign_trial_folders(study: optuna.Study, plan: SweepPlan) -> None:
    """A new study must not write into trial folders left by another one (a deleted study.db, say)."""
    leftovers = sorted(plan.study_dir.glob("trial_*"))
    if leftovers and not study.get_trials(deepcopy=False):
        raise UserInputError(f"sweep.dir={plan.study_dir} holds {len(leftovers)} trial folders but the storage has no "
                             f"trial of study {plan.settings.study_name!r}; remove them or choose another sweep.dir")


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
    return [process.exitcode for process in processes]


def _wait_for(processes: list[multiprocessing.process.BaseProcess]) -> None:
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
        sys.exit(INTERRUPTED_EXIT_CODE)


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

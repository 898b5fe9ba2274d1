"""``hydra/launcher=slurm|slurm_local``: hydra-submitit-launcher's launchers, waiting for a grid's jobs
the way sweeplab waits for a study's workers.

The plugin's own ``launch`` asks submitit for each job's result: a job that ended without
one (cancelled, killed, out of memory) stops the whole grid with a traceback, or, on a
cluster without accounting (``make slurm-up``'s), keeps it waiting forever. Here such a job
is noticed (:func:`sweeplab.cluster.ended`), logged with the place of its log, and
recorded in its run folder as a ``failed`` run, so that it is a row of the summary and
the grid ends as other grids do. Each job itself runs the plugin's code (its ``__call__``,
and ``checkpoint``, with which submitit requeues a job that reached its time limit).

Hydra imports every module of ``hydra_plugins`` when it starts: without the ``slurm``
extra this module defines nothing, and ``train.py`` says what to install
(:mod:`sweeplab.config.launchers`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.types import HydraContext
from omegaconf import DictConfig, open_dict

from sweeplab.cluster import ended, ended_without_result, refused_submission_is_user_error, submitit_executor
from sweeplab.errors import UserErrorExit, UserInputError

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
except ImportError:  # the slurm extra is not installed
    submitit_launcher = None

log = logging.getLogger(__name__)
POLL_S = 5.0  # how often the jobs are looked at


class _WaitingLauncher:
    """The part both launchers share; ``executor`` names submitit's executor."""

    executor: str
    params: dict[str, Any]
    config: DictConfig  # set by the submitit launcher's setup(), which the concrete launchers inherit
    hydra_context: HydraContext

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        jobs = self._submit(job_overrides, initial_job_idx)
        waiting = list(jobs)
        while waiting:
            time.sleep(POLL_S)
            finished = ended(waiting)
            waiting = [job for job in waiting if job not in finished]
        return [
            self._job_return(job, list(overrides), initial_job_idx + index)
            for index, (job, overrides) in enumerate(zip(jobs, job_overrides, strict=True))
        ]

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """Submit one job per override list, as the plugin does (the same parameters, folders and arguments)."""
        executor = submitit_executor(self.params["submitit_folder"], self.executor, self.params)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("submitting %d jobs (%s) for %s", len(job_overrides), self.executor, sweep_dir)
        arguments = []
        for index, overrides in enumerate(job_overrides):
            number = initial_job_idx + index
            log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
            arguments.append(
                (list(overrides), "hydra.sweep.dir", number, f"job_id_for_{number}", Singleton.get_state())
            )
        try:
            with refused_submission_is_user_error():
                jobs = executor.map_array(self, *zip(*arguments, strict=True))
        except UserInputError as error:  # Hydra would print a traceback: the command's one line instead
            raise UserErrorExit(error) from None
        log.info(
            "jobs %s; their logs: %s", " ".join(job.job_id for job in jobs), Path(self.params["submitit_folder"]).parent
        )
        return jobs

    def _job_return(self, job: Any, overrides: list[str], number: int) -> JobReturn:
        reason = ended_without_result(job)
        if reason is None:
            return job.results()[0]
        message = f"SLURM job {job.job_id} ended without finishing: {reason}; its log: {job.paths.stderr}"
        log.error("job %d: %s", number, message)
        self._record_failure(overrides, number, message)
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=None)

    def _record_failure(self, overrides: list[str], number: int, message: str) -> None:
        """A ``failed`` results.json in the job's run folder, unless the job recorded how it ended itself."""
        from sweeplab.config.compose import without_hydra_node  # noqa: PLC0415
        from sweeplab.runs.start import record_failed_job  # noqa: PLC0415

        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config.hydra.job):
            sweep_config.hydra.job.num = number
        run_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        cfg, hydra_node = without_hydra_node(sweep_config)
        try:
            record_failed_job(cfg, run_dir, hydra_node, overrides, message)
        except OSError as error:
            log.error("could not record job %d in %s: %s", number, run_dir, error)


if submitit_launcher is not None:

    class SlurmLauncher(_WaitingLauncher, submitit_launcher.SlurmLauncher):
        executor = "slurm"

    class LocalLauncher(_WaitingLauncher, submitit_launcher.LocalLauncher):
        executor = "local"

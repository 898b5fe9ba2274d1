"""One ``sweep.py`` command: run the study's missing trials, write the report, say how it went."""

from __future__ import annotations

import sys

import optuna

from sweeplab.errors import INTERRUPTED_EXIT_CODE, USER_ERROR_EXIT_CODE
from sweeplab.sweeps.log_setup import LOG_FILE, configure_sweep_logging
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.report import (PARETO_DIR, REPORT_FILE, best_trial, count_trials, pareto_config, pareto_front,
                                    retrain_command, value_text, write_report)
from sweeplab.sweeps.study import load_existing_study
from sweeplab.sweeps.interrupts import RESUME_HINT
from sweeplab.sweeps.workers import run_study


def run_sweep(plan: SweepPlan) -> int:
    """Run (unless ``report_only``) and report the study; returns the command's exit status."""
    if plan.settings.report_only:
        study = load_existing_study(plan.settings, plan.storage_url)  # refuses a study that does not exist
    configure_sweep_logging(plan.study_dir / LOG_FILE)
    exit_codes: list[int] = []
    if not plan.settings.report_only:
        try:
            exit_codes = run_study(plan)
        except KeyboardInterrupt:
            print(RESUME_HINT, file=sys.stderr)
            return INTERRUPTED_EXIT_CODE
        if plan.settings.launcher != "local" and not plan.settings.wait:
            return 0  # the jobs were submitted; the report comes with sweep.report_only=true
        study = load_existing_study(plan.settings, plan.storage_url)
    write_report(study, plan)
    print(summary(study, plan))
    return exit_status(study, plan, exit_codes)


def summary(study: optuna.Study, plan: SweepPlan) -> str:
    settings = plan.settings
    counts = count_trials(study.get_trials(deepcopy=False))
    lines = [f"study {settings.study_name}: {counts.finished} of {settings.n_trials} trials finished "
             f"({counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed"
             + (f", {counts.running} running" if counts.running else "") + ")"]
    if settings.multi_objective:
        front = pareto_front(study)
        if front:
            lines.append(f"Pareto front: {len(front)} trial{'' if len(front) == 1 else 's'}: " + "; ".join(
                f"{t.number} (" + ", ".join(f"{name}={value_text(v)}" for name, v in zip(settings.metrics, t.values)) + ")"
                for t in front))
            lines.append(f"their configs: {plan.study_dir / PARETO_DIR}/; retrain one: "
                         f"{retrain_command(plan, pareto_config(plan, front[0].number))}")
    elif (best := best_trial(study)) is not None:
        lines.append(f"best {settings.metric}={best.value:.4f} (trial {best.number}); retrain: {retrain_command(plan)}")
    lines.append(f"report: {plan.study_dir / REPORT_FILE}")
    return "\n".join(lines)


def exit_status(study: optuna.Study, plan: SweepPlan, worker_exit_codes: list[int]) -> int:
    """0 when the study has its trials (running ones elsewhere count); else why the workers stopped."""
    if USER_ERROR_EXIT_CODE in worker_exit_codes:
        return USER_ERROR_EXIT_CODE
    if INTERRUPTED_EXIT_CODE in worker_exit_codes:  # a worker was stopped on its own (a SIGTERM to its pid)
        print(RESUME_HINT, file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    counts = count_trials(study.get_trials(deepcopy=False))
    if plan.settings.report_only or counts.finished + counts.running >= plan.settings.n_trials:
        return 0
    print(f"error: {counts.finished} of sweep.n_trials={plan.settings.n_trials} trials finished; the workers "
          f"stopped after failed trials (see {plan.study_dir / LOG_FILE} and the trial folders)", file=sys.stderr)
    return 1

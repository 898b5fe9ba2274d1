"""One ``sweep.py`` command: run the study's missing trials, write the report, say how it went."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import optuna

from sweeplab.errors import USER_ERROR_EXIT_CODE, UserInputError
from sweeplab.redact import redact_text
from sweeplab.runs.folder import CURVES_PNG, RESULTS_FILE
from sweeplab.stops import exit_code_of_stop, is_stop_exit_code
from sweeplab.sweeps.interrupts import RESUME_HINT
from sweeplab.sweeps.log_setup import LOG_FILE, configure_sweep_logging
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.report import PARETO_DIR, REPORT_FILE, pareto_config, retrain_command, value_text, write_report
from sweeplab.sweeps.settings import BEST_PLOTS
from sweeplab.sweeps.study import load_existing_study, open_study
from sweeplab.sweeps.trials import best_trial, count_trials, pareto_front, places_left
from sweeplab.sweeps.warm_start import read_warm_start, warm_start
from sweeplab.sweeps.workers import run_workers

log = logging.getLogger(__name__)


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
            return exit_code_of_stop()
        if plan.settings.launcher != "local" and not plan.settings.wait:
            return 0  # the jobs were submitted; the report comes with sweep.report_only=true
        study = load_existing_study(plan.settings, plan.storage_url)
    if plan.settings.trial_plots == BEST_PLOTS:
        draw_best_trial_plots(study, plan)
    write_report(study, plan)
    print(redact_text(summary(study, plan)))
    return exit_status(study, plan, exit_codes)


def draw_best_trial_plots(study: optuna.Study, plan: SweepPlan) -> list[int]:
    """``sweep.trial_plots=best``: draw the plots of the best trial (a trade-off study: of each trial on its Pareto
    front) that its training left undrawn; returns the trials drawn.

    Drawn once, at the study's end, from the trial's folder (:func:`~sweeplab.reports.run_plots.draw_run_plots`):
    no trial pays for plots during the study, and the trials that are not the best draw none.
    """
    from sweeplab.reports.run_plots import draw_run_plots  # noqa: PLC0415 (matplotlib: only when drawing)

    best = best_trial(study) if not plan.settings.multi_objective else None
    drawn = []
    for trial in pareto_front(study) if plan.settings.multi_objective else [best] if best is not None else []:
        trial_dir = Path(trial.user_attrs.get("dir", plan.trial_dir(trial.number)))
        if (trial_dir / CURVES_PNG).is_file() or not (trial_dir / RESULTS_FILE).is_file():
            continue  # drawn already (an earlier command, sweep.trial_plots=all), or on another machine
        if draw_run_plots(trial_dir):  # not Optuna artifacts: a finished trial takes none (sweep.trial_plots=all)
            drawn.append(trial.number)
    if drawn:
        log.info(
            "plots of trial%s %s drawn into %s",
            "s" if len(drawn) > 1 else "",
            ", ".join(map(str, drawn)),
            plan.study_dir,
        )
    return drawn


def run_study(plan: SweepPlan) -> list[int]:
    """Run the study's missing trials with up to ``sweep.workers`` workers; returns their exit codes."""
    settings = plan.settings
    earlier = read_warm_start(settings)
    study = open_study(settings, plan.storage_url)
    _refuse_foreign_trial_folders(study, plan)
    warm_start(
        study, settings, earlier, plan.base_overrides
    )  # earlier results, imported once: they take places of n_trials
    left = places_left(study, settings.n_trials)
    if left == 0:
        log.info(
            "study %s: all %d trials are finished or running; nothing to add", settings.study_name, settings.n_trials
        )
        return []
    log.info("study %s: %d of %d places left", settings.study_name, left, settings.n_trials)
    if settings.multi_objective and settings.pruner["name"] != "none":
        log.info(
            "pruning is off: Optuna's pruners follow one objective (this study has %d); the %d trials run to the end",
            len(settings.metrics),
            left,
        )
    if settings.launcher != "local":
        from sweeplab.sweeps.cluster_workers import run_cluster_workers  # noqa: PLC0415 (submitit: an extra)

        return run_cluster_workers(plan, min(settings.workers, left))
    return run_workers(plan, min(settings.workers, left))


def _refuse_foreign_trial_folders(study: optuna.Study, plan: SweepPlan) -> None:
    """A new study must not write into trial folders left by another one (a deleted study.db, say)."""
    leftovers = sorted(plan.study_dir.glob("trial_*"))
    if leftovers and not study.get_trials(deepcopy=False):
        raise UserInputError(
            f"sweep.dir={plan.study_dir} holds {len(leftovers)} trial folders but the storage has no "
            f"trial of study {plan.settings.study_name!r}; remove them or choose another sweep.dir"
        )


def summary(study: optuna.Study, plan: SweepPlan) -> str:
    settings = plan.settings
    counts = count_trials(study.get_trials(deepcopy=False))
    lines = [
        f"study {settings.study_name}: {counts.finished} of {settings.n_trials} trials finished "
        f"({counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed"
        + (f", {counts.running} running" if counts.running else "")
        + ")"
    ]
    if settings.multi_objective:
        front = pareto_front(study)
        if front:
            lines.append(
                f"Pareto front: {len(front)} trial{'' if len(front) == 1 else 's'}: "
                + "; ".join(
                    f"{t.number} ("
                    + ", ".join(f"{name}={value_text(v)}" for name, v in zip(settings.metrics, t.values, strict=True))
                    + ")"
                    for t in front
                )
            )
            lines.append(
                f"their configs: {plan.study_dir / PARETO_DIR}/; retrain one: "
                f"{retrain_command(plan, pareto_config(plan, front[0].number))}"
            )
    elif (best := best_trial(study)) is not None:
        lines.append(f"best {settings.metric}={best.value:.4f} (trial {best.number}); retrain: {retrain_command(plan)}")
    lines.append(f"report: {plan.study_dir / REPORT_FILE}")
    return "\n".join(lines)


def exit_status(study: optuna.Study, plan: SweepPlan, worker_exit_codes: list[int]) -> int:
    """0 when the study has its trials (running ones elsewhere count); else why the workers stopped."""
    if USER_ERROR_EXIT_CODE in worker_exit_codes:
        return USER_ERROR_EXIT_CODE
    stopped = [code for code in worker_exit_codes if is_stop_exit_code(code)]
    if stopped:  # a worker was stopped on its own (a SIGTERM to its pid): its signal's code
        print(RESUME_HINT, file=sys.stderr)
        return stopped[0]
    counts = count_trials(study.get_trials(deepcopy=False))
    if plan.settings.report_only or counts.finished + counts.running >= plan.settings.n_trials:
        return 0
    print(
        f"error: {counts.finished} of sweep.n_trials={plan.settings.n_trials} trials finished; the workers "
        f"stopped after failed trials (see {plan.study_dir / LOG_FILE} and the trial folders)",
        file=sys.stderr,
    )
    return 1

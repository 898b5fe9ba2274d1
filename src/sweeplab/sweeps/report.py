"""What a study leaves in its folder: ``trials.csv``, ``report.md``, plots and ``best.yaml``.

Everything is computed from the study's storage (and, for ``best.yaml``, from the
best trial's recorded config), so ``sweep.report_only=true`` rewrites it at any
time, for a study that other machines are still running too.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import optuna
import yaml
from omegaconf import OmegaConf
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from sweeplab.reports.figures import save_png
from sweeplab.reports.table_render import cell_text
from sweeplab.files import write_text_atomic
from sweeplab.sweeps.objective import is_surplus
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.study import printable_url
from sweeplab.runs.config_record import recorded_config, recorded_hydra
from sweeplab.sweeps.trial_config import compose_train_config, standalone_config

log = logging.getLogger(__name__)

TRIALS_FILE, REPORT_FILE, BEST_FILE = "trials.csv", "report.md", "best.yaml"
TOP_SHOWN = 10
FIGURE_INCHES = {"parallel_coordinate.png": (13.0, 6.0)}  # one axis per parameter needs room
DEFAULT_FIGURE_INCHES = (9.0, 5.5)
PLOTS: dict[str, tuple[str, Callable[[optuna.Study], Any]]] = {
    "optimization_history.png": ("Optimization history", optuna.visualization.matplotlib.plot_optimization_history),
    "parallel_coordinate.png": ("Parallel coordinates", optuna.visualization.matplotlib.plot_parallel_coordinate),
    "param_importances.png": ("Parameter importances", optuna.visualization.matplotlib.plot_param_importances),
    "intermediate_values.png": ("Per-epoch values (intermediate values)",
                                optuna.visualization.matplotlib.plot_intermediate_values),
}


@dataclass(frozen=True)
class StudyCounts:
    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int
    surplus: int

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def count_trials(trials: Sequence[FrozenTrial]) -> StudyCounts:
    def n(state: TrialState) -> int:
        return sum(1 for t in trials if t.state == state and not is_surplus(t))

    return StudyCounts(n(TrialState.COMPLETE), n(TrialState.PRUNED), n(TrialState.FAIL), n(TrialState.RUNNING),
                       n(TrialState.WAITING), sum(1 for t in trials if is_surplus(t)))


def write_report(study: optuna.Study, plan: SweepPlan) -> list[Path]:
    """Write every report file into the sweep folder; returns the files written."""
    folder = plan.study_dir
    trials = study.get_trials(deepcopy=False)
    written = [write_trials_csv(trials, plan, folder / TRIALS_FILE)]
    plots = write_plots(study, folder)
    written += [folder / name for name, outcome in plots.items() if outcome is None]
    best = best_trial(study)
    if best is not None:
        written.append(write_best_config(best, plan, folder / BEST_FILE))
    written.append(write_text_atomic(folder / REPORT_FILE, render_report(study, trials, plan, plots)))
    return written


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def ranked(trials: Sequence[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Complete trials, best first."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return sorted(complete, key=lambda t: t.value, reverse=direction == "maximize")


# --- trials.csv ---------------------------------------------------------------------
def write_trials_csv(trials: Sequence[FrozenTrial], plan: SweepPlan, path: Path) -> Path:
    settings = plan.settings
    params = _param_columns(trials, settings.space.keys)
    columns = ["number", "state", settings.metric, *params, "epochs_reported", "test_acc", "status", "error",
               "duration_s", "started", "dir"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for trial in sorted(trials, key=lambda t: t.number):
        writer.writerow([
            trial.number, _state_name(trial), _blank(trial.value), *(_blank(trial.params.get(p)) for p in params),
            len(trial.intermediate_values), _blank(trial.user_attrs.get("test_acc")),
            trial.user_attrs.get("status", ""), trial.user_attrs.get("error", ""), _blank(_duration_s(trial)),
            trial.datetime_start.isoformat(timespec="seconds") if trial.datetime_start else "",
            trial.user_attrs.get("dir", ""),
        ])
    return write_text_atomic(path, buffer.getvalue())


def _param_columns(trials: Sequence[FrozenTrial], space_keys: Sequence[str]) -> list[str]:
    """The searched keys in the sweep file's order, then any others the stored trials hold."""
    seen = {key for trial in trials for key in trial.params}
    return [key for key in space_keys if key in seen] + sorted(seen - set(space_keys))


def _state_name(trial: FrozenTrial) -> str:
    return "SURPLUS" if is_surplus(trial) else trial.state.name


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _duration_s(trial: FrozenTrial) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return round((trial.datetime_complete - trial.datetime_start).total_seconds(), 3)


# --- best.yaml ----------------------------------------------------------------------
def write_best_config(trial: FrozenTrial, plan: SweepPlan, path: Path) -> Path:
    """The best trial's full resolved config, runnable with ``train.py --config-name best``.

    Taken from the trial's ``.hydra/`` files; a trial run on another machine is
    composed again from its stored overrides.
    """
    trial_dir = Path(trial.user_attrs.get("dir", plan.trial_dir(trial.number)))
    cfg, hydra_node = recorded_config(trial_dir), recorded_hydra(trial_dir)
    if cfg is None or hydra_node is None:
        composed, hydra_node = compose_train_config(trial.user_attrs["overrides"])
        cfg = OmegaConf.to_container(composed, resolve=True)
    header = (
        f"# The best trial of study {plan.settings.study_name!r}: trial {trial.number}, "
        f"{plan.settings.metric}={trial.value:.6g} ({trial_dir}).\n"
        f"# Train it again: {retrain_command(plan)}\n"
    )
    body = yaml.safe_dump(standalone_config(cfg, hydra_node), sort_keys=False, default_flow_style=False)
    return write_text_atomic(path, header + body)


def retrain_command(plan: SweepPlan) -> str:
    """Hydra reads a relative --config-path from the package's folder, so the path is absolute."""
    return f"python train.py --config-path {plan.study_dir} --config-name {Path(BEST_FILE).stem}"


# --- plots --------------------------------------------------------------------------
def write_plots(study: optuna.Study, folder: Path) -> dict[str, str | None]:
    """Each plot's file name -> None when written, else why not (too few trials, say)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 (Optuna's plots draw with pyplot)

    outcomes: dict[str, str | None] = {}
    for name, (_title, plot) in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                axes = plot(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(*FIGURE_INCHES.get(name, DEFAULT_FIGURE_INCHES))
            figure.tight_layout()
            save_png(figure, folder / name)
            plt.close(figure)
            outcomes[name] = None
        except Exception as error:  # noqa: BLE001 (a plot is never worth the report)
            outcomes[name] = f"{type(error).__name__}: {error}"
            log.info("skipped %s: %s", name, outcomes[name])
    return outcomes


# --- report.md ----------------------------------------------------------------------
def render_report(study: optuna.Study, trials: Sequence[FrozenTrial], plan: SweepPlan,
                  plots: dict[str, str | None]) -> str:
    settings = plan.settings
    counts = count_trials(trials)
    lines = [
        f"# Sweep {settings.study_name}",
        "",
        f"- sweep file: `{settings.source}`",
        f"- storage: `{printable_url(plan.storage_url)}`",
        f"- objective: {settings.direction} `{settings.metric}` ({settings.objective}), sampler "
        f"{settings.sampler['name']}, pruner {settings.pruner['name']}",
        f"- base overrides: `{' '.join(plan.base_overrides) or '(none)'}`",
        f"- trials: {counts.finished} finished of {settings.n_trials} wanted: {counts.complete} complete, "
        f"{counts.pruned} pruned, {counts.failed} failed"
        + (f", {counts.running} running" if counts.running else "")
        + (f", {counts.waiting} waiting" if counts.waiting else "")
        + (f", {counts.surplus} surplus (started after all places were taken; not trained)" if counts.surplus else ""),
        f"- time: {_time_spent(trials)}",
        "",
    ]
    lines += _best_section(best_trial(study), plan)
    lines += _top_section(trials, settings.direction, settings.metric, settings.space.keys)
    lines += _importance_section(study)
    lines += _plot_section(plots)
    return "\n".join(lines) + "\n"


def _time_spent(trials: Sequence[FrozenTrial]) -> str:
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    if not done:
        return "no trial has ended yet"
    training = sum((t.datetime_complete - t.datetime_start for t in done), timedelta())
    wall = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return f"{_duration(training)} in trials, {_duration(wall)} from the first trial's start to the last one's end"


def _duration(span: timedelta) -> str:
    seconds = int(round(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _best_section(best: FrozenTrial | None, plan: SweepPlan) -> list[str]:
    if best is None:
        return ["## Best trial", "", "No trial has completed yet.", ""]
    metric = plan.settings.metric
    lines = [
        "## Best trial",
        "",
        f"Trial {best.number}: {metric} = {best.value:.4f}"
        + (f", test_acc = {best.user_attrs['test_acc']:.4f}" if best.user_attrs.get("test_acc") is not None else ""),
        "",
        "| parameter | value |",
        "|---|---|",
        *(f"| {key} | {cell_text(value)} |" for key, value in best.params.items()),
        "",
        f"- folder: `{best.user_attrs.get('dir', plan.trial_dir(best.number))}`",
        f"- config: `{BEST_FILE}`; train it again: `{retrain_command(plan)}`",
        "",
    ]
    return lines


def _top_section(trials: Sequence[FrozenTrial], direction: str, metric: str, space_keys: Sequence[str]) -> list[str]:
    top = ranked(trials, direction)[:TOP_SHOWN]
    if not top:
        return []
    params = _param_columns(top, space_keys)
    header = ["rank", "trial", metric, *params, "test_acc", "epochs", "duration"]
    lines = [f"## Top {len(top)} complete trials", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for rank, trial in enumerate(top, start=1):
        cells = [rank, trial.number, f"{trial.value:.4f}", *(cell_text(trial.params.get(p)) for p in params),
                 cell_text(trial.user_attrs.get("test_acc")), len(trial.intermediate_values),
                 _duration(trial.datetime_complete - trial.datetime_start)]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines + [""]


def _importance_section(study: optuna.Study) -> list[str]:
    lines = ["## Parameter importances", ""]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # "few trials per regime": the table says how many
            importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as error:
        return lines + [f"Not computed: {error}", ""]
    if not importances:
        return lines + ["Not computed: no parameter varies across the complete trials.", ""]
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    lines += [f"Computed by Optuna's default evaluator over the {complete} complete trials.", "",
              "| parameter | importance |", "|---|---|"]
    lines += [f"| {key} | {value:.3f} |" for key, value in importances.items()]
    return lines + [""]


def _plot_section(plots: dict[str, str | None]) -> list[str]:
    lines = ["## Plots", ""]
    for name, outcome in plots.items():
        title = PLOTS[name][0]
        lines += [f"### {title}", "", f"![{title}]({name})" if outcome is None else f"Not drawn: {outcome}", ""]
    return lines



"""What a study leaves in its folder: ``trials.csv``, ``report.md``, plots and ``best.yaml``.

Everything is computed from the study's storage (and, for ``best.yaml``, from the
best trial's recorded config), so ``sweep.report_only=true`` rewrites it at any
time, for a study that other machines are still running too.

A trade-off (multi-objective) study has no single best trial: its report lists the
Pareto front (Optuna's ``best_trials``: the complete, feasible trials no other one dominates:
as good on every objective and better on one), draws it in ``pareto_front.png``, and writes one config per
front trial, ``pareto/trial_NNNN.yaml``, in ``best.yaml``'s place. With
``sweep.constraints``, infeasible trials are marked, and never the best nor on the front.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import optuna
import yaml
from omegaconf import OmegaConf
from optuna.exceptions import ExperimentalWarning
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from sweeplab.files import write_text_atomic
from sweeplab.redact import redact_data, redact_text
from sweeplab.reports.figures import save_png
from sweeplab.reports.table_render import markdown_table
from sweeplab.runs.config_record import recorded_config, recorded_hydra
from sweeplab.runs.results import TIMED_OUT
from sweeplab.sweeps.objectives import objectives_text
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.settings import SweepSettings
from sweeplab.sweeps.trial_config import compose_train_config, standalone_config
from sweeplab.sweeps.trials import (
    best_trial,
    count_trials,
    is_feasible,
    is_surplus,
    missed_constraints,
    pareto_front,
    ranked,
)

log = logging.getLogger(__name__)

TRIALS_FILE, REPORT_FILE, BEST_FILE = "trials.csv", "report.md", "best.yaml"
PARETO_DIR, PARETO_PNG = "pareto", "pareto_front.png"  # a trade-off study's configs, one per front trial, and its plot
TOP_SHOWN = 10
FIGURE_INCHES = {"parallel_coordinate.png": (13.0, 6.0), PARETO_PNG: (8.0, 6.0)}  # one axis per parameter needs room
DEFAULT_FIGURE_INCHES = (9.0, 5.5)
PLOTS: dict[str, tuple[str, Callable[[optuna.Study], Any]]] = {
    "optimization_history.png": ("Optimization history", optuna.visualization.matplotlib.plot_optimization_history),
    "parallel_coordinate.png": ("Parallel coordinates", optuna.visualization.matplotlib.plot_parallel_coordinate),
    "param_importances.png": ("Parameter importances", optuna.visualization.matplotlib.plot_param_importances),
    "intermediate_values.png": (
        "Per-epoch values (intermediate values)",
        optuna.visualization.matplotlib.plot_intermediate_values,
    ),
}


def plot_pareto_front(study: optuna.Study) -> Any:
    """Optuna's Pareto-front plot, its axes named by the objectives (and which way is better), the front's
    points labelled with their trial numbers (two objectives)."""
    names = study.metric_names or [f"objective {index}" for index in range(len(study.directions))]
    axes = optuna.visualization.matplotlib.plot_pareto_front(
        study,
        target_names=[
            f"{name} ({'higher' if direction == StudyDirection.MAXIMIZE else 'lower'} is better)"
            for name, direction in zip(names, study.directions, strict=True)
        ],
    )
    if len(study.directions) == 2:
        for trial in study.best_trials:
            axes.annotate(
                f"trial {trial.number}",
                (trial.values[0], trial.values[1]),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=9,
            )
    handles, labels = axes.get_legend_handles_labels()
    if handles:  # Optuna's labels, in words that say what the colours mean
        axes.legend(handles, [LEGEND.get(label.strip(), label) for label in labels])
    axes.set_title(f"Pareto front of {study.study_name}: the best trade-offs in red")
    return axes


LEGEND = {
    "Best Trial": "on the Pareto front",
    "Trial": "dominated: another is as good on every objective, better on one",
    "Feasible Trial": "feasible, dominated by another",
    "Infeasible Trial": "infeasible (misses a constraint)",
}


# a trade-off study: no single history to draw, no per-epoch reports (it is not pruned)
TRADE_OFF_PLOTS: dict[str, tuple[str, Callable[[optuna.Study], Any]]] = {
    PARETO_PNG: ("Pareto front", plot_pareto_front),
    "parallel_coordinate.png": PLOTS["parallel_coordinate.png"],
    "param_importances.png": PLOTS["param_importances.png"],
}


def write_report(study: optuna.Study, plan: SweepPlan) -> list[Path]:
    """Write every report file into the sweep folder; returns the files written."""
    folder = plan.study_dir
    trials = study.get_trials(deepcopy=False)
    written = [write_trials_csv(trials, plan, folder / TRIALS_FILE, study)]
    plots = write_plots(study, folder, TRADE_OFF_PLOTS if plan.settings.multi_objective else PLOTS)
    written += [folder / name for name, outcome in plots.items() if outcome is None]
    if plan.settings.multi_objective:
        written += write_pareto_configs(pareto_front(study), plan)
    elif (best := best_trial(study)) is not None:
        written.append(write_best_config(best, plan, folder / BEST_FILE))
    written.append(write_text_atomic(folder / REPORT_FILE, redact_text(render_report(study, trials, plan, plots))))
    return written


# --- trials.csv ---------------------------------------------------------------------
def write_trials_csv(
    trials: Sequence[FrozenTrial], plan: SweepPlan, path: Path, study: optuna.Study | None = None
) -> Path:
    """One row per trial; a trade-off study has a column per objective and ``pareto`` (yes for a front trial);
    constraints add each constrained metric not shown yet and ``feasible`` (yes, or the constraints missed)."""
    settings = plan.settings
    params = _param_columns(trials, settings.space.keys)
    front = {t.number for t in pareto_front(study)} if settings.multi_objective and study is not None else None
    measured = [
        name
        for name in dict.fromkeys(c.metric for c in settings.constraints)
        if name not in (*settings.metrics, "test_acc")
    ]
    columns = [
        "number",
        "state",
        *settings.metrics,
        *(["pareto"] if front is not None else []),
        *params,
        "epochs_reported",
        "test_acc",
        *measured,
        *(["feasible"] if settings.constraints else []),
        "status",
        "error",
        "duration_s",
        "started",
        "dir",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for trial in sorted(trials, key=lambda t: t.number):
        values = trial.values or [None] * len(settings.metrics)
        writer.writerow(
            [
                trial.number,
                _state_name(trial),
                *(_blank(v) for v in values),
                *([("yes" if trial.number in front else "")] if front is not None else []),
                *(_blank(trial.params.get(p)) for p in params),
                len(trial.intermediate_values),
                _blank(trial.user_attrs.get("test_acc")),
                *(_blank(trial.user_attrs.get(name)) for name in measured),
                *([_feasibility(trial)] if settings.constraints else []),
                trial.user_attrs.get("status", ""),
                trial.user_attrs.get("error", ""),
                _blank(_duration_s(trial)),
                trial.datetime_start.isoformat(timespec="seconds") if trial.datetime_start else "",
                trial.user_attrs.get("dir", ""),
            ]
        )
    return write_text_atomic(path, redact_text(buffer.getvalue()))


def _feasibility(trial: FrozenTrial) -> str:
    """``yes``, ``no: num_params<=100000`` (the constraints it missed), or blank for a trial not measured."""
    if not trial.constraints:
        return ""
    missed = missed_constraints(trial)
    return f"no: {', '.join(missed)}" if missed else "yes"


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
    header = (
        f"# The best trial of study {plan.settings.study_name!r}: trial {trial.number}, "
        f"{plan.settings.metric}={trial.value:.6g} ({_trial_dir(trial, plan)}).\n"
        f"# Train it again: {retrain_command(plan)}\n"
    )
    return _write_trial_config(trial, plan, path, header)


def write_pareto_configs(front: Sequence[FrozenTrial], plan: SweepPlan) -> list[Path]:
    """``pareto/trial_NNNN.yaml`` for each trial of a trade-off study's Pareto front (as ``best.yaml`` is for one
    best trial); the file of a trial no longer on the front is removed."""
    folder = plan.study_dir / PARETO_DIR
    written = []
    for trial in front:
        path = pareto_config(plan, trial.number)
        values = ", ".join(
            f"{name}={value_text(v)}" for name, v in zip(plan.settings.metrics, trial.values, strict=True)
        )
        header = (
            f"# Trial {trial.number} of study {plan.settings.study_name!r}, on its Pareto front: {values} "
            f"({_trial_dir(trial, plan)}).\n# Train it again: {retrain_command(plan, path)}\n"
        )
        written.append(_write_trial_config(trial, plan, path, header))
    for stale in set(folder.glob("trial_*.yaml")) - set(written):
        stale.unlink(missing_ok=True)
    return written


def pareto_config(plan: SweepPlan, number: int) -> Path:
    return plan.study_dir / PARETO_DIR / f"{plan.trial_dir(number).name}.yaml"


def _trial_dir(trial: FrozenTrial, plan: SweepPlan) -> Path:
    return Path(trial.user_attrs.get("dir", plan.trial_dir(trial.number)))


def _write_trial_config(trial: FrozenTrial, plan: SweepPlan, path: Path, header: str) -> Path:
    trial_dir = _trial_dir(trial, plan)
    cfg, hydra_node = recorded_config(trial_dir), recorded_hydra(trial_dir)
    if cfg is None or hydra_node is None:
        composed, hydra_node = compose_train_config(trial.user_attrs["overrides"])
        cfg = cast(dict[str, Any], OmegaConf.to_container(composed, resolve=True))
    body = yaml.safe_dump(redact_data(standalone_config(cfg, hydra_node)), sort_keys=False, default_flow_style=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, redact_text(header) + body)


def retrain_command(plan: SweepPlan, config: Path | None = None) -> str:
    """How to train a config of the study again (``best.yaml`` by default).

    Hydra reads a relative --config-path from the package's folder, so the path is absolute."""
    config = config or plan.study_dir / BEST_FILE
    return f"python train.py --config-path {config.parent} --config-name {config.stem}"


def value_text(value: float | None) -> str:
    """An objective's value: a count as an integer (num_params), anything else to 4 decimals."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"


# --- plots --------------------------------------------------------------------------
def write_plots(
    study: optuna.Study, folder: Path, plots: dict[str, tuple[str, Callable]] | None = None
) -> dict[str, str | None]:
    """Each plot's file name -> None when written, else why not (too few trials, say)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 (Optuna's plots draw with pyplot)

    outcomes: dict[str, str | None] = {}
    for name, (_title, plot) in (PLOTS if plots is None else plots).items():
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
def render_report(
    study: optuna.Study, trials: Sequence[FrozenTrial], plan: SweepPlan, plots: dict[str, str | None]
) -> str:
    settings = plan.settings
    counts = count_trials(trials)
    pruner = (
        f"pruning off (Optuna's pruners follow one objective; sweep.pruner.name={settings.pruner['name']} unused)"
        if settings.multi_objective
        else f"pruner {settings.pruner['name']}"
    )
    lines = [
        f"# Sweep {settings.study_name}",
        "",
        f"- sweep file: `{settings.source}`",
        f"- storage: `{plan.storage_url}`",  # masked with the whole report
        f"- {'objectives' if settings.multi_objective else 'objective'}: "
        f"{objectives_text(settings.metrics, settings.directions)} ({plan.objective_kind}), sampler "
        f"{settings.sampler['name']}, {pruner}",
        *([_constraints_line(trials, settings)] if settings.constraints else []),
        f"- base overrides: `{' '.join(plan.base_overrides) or '(none)'}`",
        f"- trials: {counts.finished} finished of {settings.n_trials} wanted: {counts.complete} complete, "
        f"{counts.pruned} pruned, {counts.failed} failed"
        + (f", {counts.running} running" if counts.running else "")
        + (f", {counts.waiting} waiting" if counts.waiting else "")
        + (f", {counts.surplus} surplus (started after all places were taken; not trained)" if counts.surplus else ""),
        f"- time: {_time_spent(trials)}",
        *_warm_start_lines(study),
        *_resumed_lines(trials),
        *_timed_out_lines(trials),
        "",
    ]
    if settings.multi_objective:
        lines += _pareto_section(pareto_front(study), plan, trials)
    else:
        lines += _best_section(best_trial(study), plan)
    lines += _top_section(trials, settings, study)
    lines += _importance_section(study)
    lines += _plot_section(plots, TRADE_OFF_PLOTS if settings.multi_objective else PLOTS)
    return "\n".join(lines) + "\n"


def _warm_start_lines(study: optuna.Study) -> list[str]:
    """How many earlier results ``sweep.warm_start`` imported (study attribute ``sweeplab:warm_start``)."""
    imported = study.user_attrs.get("sweeplab:warm_start")
    if not isinstance(imported, dict):
        return []
    return [
        f"- warm start: {imported.get('imported')} of {imported.get('offered')} earlier results imported from "
        f"`{imported.get('source')}` (finished trials: they count toward n_trials)"
    ]


def _timed_out_lines(trials: Sequence[FrozenTrial]) -> list[str]:
    """Trials stopped at ``sweep.trial_timeout_min`` (to Optuna pruned ones, with status ``timed_out``)."""
    numbers = [str(t.number) for t in trials if t.user_attrs.get("status") == TIMED_OUT]
    return (
        [f"- timed out: trial{'s' if len(numbers) > 1 else ''} {', '.join(numbers)} (sweep.trial_timeout_min)"]
        if numbers
        else []
    )


def _resumed_lines(trials: Sequence[FrozenTrial]) -> list[str]:
    """Retried trials that went on from their original's last checkpoint (or from the start, without one)."""
    retried = [t for t in trials if "resumed_from_trial" in t.user_attrs]
    if not retried:
        return []
    each = [
        f"{t.number} from trial {t.user_attrs['resumed_from_trial']} "
        + (
            f"at epoch {t.user_attrs['resumed_from_epoch']}"
            if "resumed_from_epoch" in t.user_attrs
            else "(from the start)"
        )
        for t in retried
    ]
    return [f"- resumed: {_trials(len(retried))} retried in their original's folder: {'; '.join(each)}"]


def _constraints_line(trials: Sequence[FrozenTrial], settings: SweepSettings) -> str:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = sum(1 for t in complete if is_feasible(t))
    return (
        f"- constraints: {', '.join(f'`{c.text}`' for c in settings.constraints)}: {feasible} of {len(complete)} "
        "complete trials feasible (the others are never the best)"
    )


def _time_spent(trials: Sequence[FrozenTrial]) -> str:
    spans = [(start, end) for t in trials if (start := t.datetime_start) and (end := t.datetime_complete)]
    if not spans:
        return "no trial has ended yet"
    training = sum((end - start for start, end in spans), timedelta())
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return f"{_duration(training)} in trials, {_duration(wall)} from the first trial's start to the last one's end"


def _duration(span: timedelta) -> str:
    seconds = int(round(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _best_section(best: FrozenTrial | None, plan: SweepPlan) -> list[str]:
    if best is None:
        none = (
            "No complete trial meets the constraints." if plan.settings.constraints else "No trial has completed yet."
        )
        return ["## Best trial", "", none, ""]
    metric = plan.settings.metric
    lines = [
        "## Best trial",
        "",
        f"Trial {best.number}: {metric} = {best.value:.4f}"
        + (f", test_acc = {best.user_attrs['test_acc']:.4f}" if best.user_attrs.get("test_acc") is not None else ""),
        "",
        markdown_table(["parameter", "value"], [[key, value] for key, value in best.params.items()]).rstrip("\n"),
        "",
        f"- folder: `{best.user_attrs.get('dir', plan.trial_dir(best.number))}`",
        f"- config: `{BEST_FILE}`; train it again: `{retrain_command(plan)}`",
        "",
    ]
    return lines


def _pareto_section(front: Sequence[FrozenTrial], plan: SweepPlan, trials: Sequence[FrozenTrial]) -> list[str]:
    settings = plan.settings
    if not front:
        none = "No complete trial meets the constraints." if settings.constraints else "No trial has completed yet."
        return ["## Pareto front", "", none, ""]
    params = _param_columns(front, settings.space.keys)
    header = ["trial", *settings.metrics, *params, "config", "folder"]
    lines = [
        "## Pareto front",
        "",
        f"{_trials(len(front))} that no other complete{', feasible' if settings.constraints else ''} trial dominates (is "
        f"as good on every objective and better on one: {objectives_text(settings.metrics, settings.directions)}), "
        f"best {settings.metrics[0]} "
        f"first; each one's full training config is in `{PARETO_DIR}/`.",
        "",
        markdown_table(
            header,
            [
                [
                    trial.number,
                    *(value_text(v) for v in trial.values),
                    *(trial.params.get(p) for p in params),
                    f"`{PARETO_DIR}/{pareto_config(plan, trial.number).name}`",
                    f"`{_trial_dir(trial, plan)}`",
                ]
                for trial in front
            ],
        ).rstrip("\n"),
    ]
    example = pareto_config(plan, front[0].number)
    lines += ["", f"Train one again (trial {front[0].number} here): `{retrain_command(plan, example)}`", ""]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for name in _constant_objectives(complete, settings.metrics):
        lines += [
            f"Note: {name} is {value_text(complete[0].values[settings.metrics.index(name)])} in all "
            f"{len(complete)} complete trials: no searched parameter changes it, so it trades nothing off "
            "(for num_params, search the model or its size, as sweeps/mnist_tradeoff.yaml does).",
            "",
        ]
    return lines


def _constant_objectives(complete: Sequence[FrozenTrial], metrics: Sequence[str]) -> list[str]:
    """The objectives with one value in every complete trial (of two or more)."""
    if len(complete) < 2:
        return []
    return [name for index, name in enumerate(metrics) if len({t.values[index] for t in complete}) == 1]


def _top_section(trials: Sequence[FrozenTrial], settings: SweepSettings, study: optuna.Study) -> list[str]:
    top = ranked(trials, settings.directions[0])[:TOP_SHOWN]
    if not top:
        return []
    params = _param_columns(top, settings.space.keys)
    front = {t.number for t in pareto_front(study)} if settings.multi_objective else None
    header = [
        "rank",
        "trial",
        *settings.metrics,
        *(["front"] if front is not None else []),
        *(["feasible"] if settings.constraints else []),
        *params,
        "test_acc",
        "epochs",
        "duration",
    ]
    title = (
        f"## Top {len(top)} complete trials"
        if front is None
        else f"## Top {len(top)} complete trials by {settings.metrics[0]}"
    )
    rows = []
    for rank, trial in enumerate(top, start=1):
        assert trial.datetime_start is not None and trial.datetime_complete is not None  # complete trials
        values = [value_text(v) for v in trial.values] if front is not None else [f"{trial.value:.4f}"]
        rows.append(
            [
                rank,
                trial.number,
                *values,
                *(["yes" if trial.number in front else ""] if front is not None else []),
                *([_feasibility(trial)] if settings.constraints else []),
                *(trial.params.get(p) for p in params),
                trial.user_attrs.get("test_acc"),
                len(trial.intermediate_values) or trial.user_attrs.get("epochs_run", 0),  # unpruned: no reports
                _duration(trial.datetime_complete - trial.datetime_start),
            ]
        )
    return [title, "", markdown_table(header, rows)]


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def _importance_section(study: optuna.Study) -> list[str]:
    """Optuna's importances; a trade-off study's in one column per objective (one that never varies left out)."""
    lines = ["## Parameter importances", ""]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    multi = len(study.directions) > 1
    names = (
        (study.metric_names or [f"objective {i}" for i in range(len(study.directions))]) if multi else ["importance"]
    )
    constant = _constant_objectives(complete, names) if multi else []
    shown = [index for index, name in enumerate(names) if name not in constant]  # a constant's importances are noise
    if not shown:
        return lines + ["Not computed: every objective has one value in all complete trials.", ""]
    per_objective = []
    try:
        for index in shown:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)  # "few trials per regime": the table says how many
                target: Callable[[FrozenTrial], float] | None = (lambda t, i=index: t.values[i]) if multi else None
                per_objective.append(optuna.importance.get_param_importances(study, target=target))
    except (ValueError, RuntimeError) as error:
        return lines + [f"Not computed: {error}", ""]
    if not per_objective[0]:
        return lines + ["Not computed: no parameter varies across the complete trials.", ""]
    lines += [
        f"Computed by Optuna's default evaluator over the {len(complete)} complete trials"
        + (", for each objective" if multi else "")
        + (f" ({', '.join(constant)}: one value in every trial, left out)" if constant else "")
        + ".",
        "",
        markdown_table(
            ["parameter", *(names[i] for i in shown)],
            [[key, *(f"{imp.get(key, 0.0):.3f}" for imp in per_objective)] for key in per_objective[0]],
        ),
    ]
    return lines


def _plot_section(plots: dict[str, str | None], drawn: dict[str, tuple[str, Callable]] = PLOTS) -> list[str]:
    lines = ["## Plots", ""]
    for name, outcome in plots.items():
        title = drawn[name][0]
        lines += [f"### {title}", "", f"![{title}]({name})" if outcome is None else f"Not drawn: {outcome}", ""]
    return lines

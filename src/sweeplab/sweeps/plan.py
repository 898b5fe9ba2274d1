"""Check a sweep before any trial runs, and settle where it writes.

Every trial composes ``sweep.overrides`` + the command line's training overrides
+ its sampled values. Before the study starts, the base config is composed and
checked as a run's is, and so is each search-space bound (each choice, ``low`` and
``high``, with the conditions that make the parameter active); each parameter's
type must also fit the config key it sets (an integer key gets an int
distribution). A value no trial could run is refused in one line instead of failing
trial after trial.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweeplab.config.compose import compose_train
from sweeplab.config.launchers import runs_here
from sweeplab.constraints import is_int
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.sweeps.settings import SweepSettings
from sweeplab.sweeps.space import Param, override
from sweeplab.sweeps.study import build_pruner, build_sampler, check_storage_url, default_storage_url

log = logging.getLogger(__name__)
_MISSING = object()


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: its settings, the training overrides all trials share, and where it writes."""

    settings: SweepSettings
    base_overrides: tuple[str, ...]
    study_dir: Path
    storage_url: str
    command_line: tuple[str, ...] = ()  # the sweep.py arguments, to say how to run it again or report it
    cross_validates: bool = False  # cv.folds >= 2 in the trials' config: each trial is a k-fold cross-validation

    @property
    def objective_kind(self) -> str:
        """How a trial is scored: ``cv`` (its folds' mean) or ``holdout`` (one fit)."""
        return "cv" if self.cross_validates else "holdout"

    def trial_dir(self, number: int) -> Path:
        return self.study_dir / f"trial_{number:04d}"


def plan_sweep(
    settings: SweepSettings, command_line_overrides: tuple[str, ...] = (), command_line: tuple[str, ...] = ()
) -> SweepPlan:
    """Compose and check what the trials will run; raise :class:`UserInputError` for bad input."""
    base_overrides = (*settings.overrides, *command_line_overrides)
    here = runs_here(settings.launcher)  # else the trials' nodes are checked by the trials
    try:
        base = compose_train(base_overrides)
        from sweeplab.cv.folds import check_cv_settings  # noqa: PLC0415 (composed: now pay for torch and Lightning)
        from sweeplab.runs.checks import check_config  # noqa: PLC0415

        check_cv_settings(base.get("cv"))
        if not settings.report_only:
            check_config(base, on_this_machine=here)
    except UserInputError as error:
        raise UserInputError(f"training overrides {' '.join(base_overrides) or '(none)'}: {error}") from None
    _warn_about_fixed_values(settings, command_line_overrides)
    _warn_about_sampler(settings)
    if not settings.report_only:
        for param in settings.space:
            _check_param_type(param, base)
            _check_param_bounds(param, base_overrides, on_this_machine=here)
        _check_objective(settings, base)
        build_sampler(settings.sampler), build_pruner(settings.pruner)  # options the Optuna classes refuse
    if settings.storage:
        check_storage_url(settings.storage)
    study_dir = Path(settings.dir or Path(base.paths.output_dir) / "sweeps" / settings.study_name).resolve()
    return SweepPlan(
        settings,
        base_overrides,
        study_dir,
        settings.storage or default_storage_url(study_dir, settings.launcher),
        command_line,
        cross_validates=_cross_validates(settings, base),
    )


def _check_param_type(param: Param, base: DictConfig) -> None:
    """An integer config key must be searched with integers (a float would fail the trial that samples it)."""
    current = OmegaConf.select(base, param.key, default=_MISSING)
    if is_int(current) and param.type == "float":
        raise ConfigError(
            f"sweep.space.{param.key}.type",
            "float",
            f"must be int: {param.key} is an integer ({current} in the base config)",
        )


def _check_param_bounds(param: Param, base_overrides: tuple[str, ...], *, on_this_machine: bool) -> None:
    from sweeplab.runs.checks import check_config  # noqa: PLC0415

    for value in param.extreme_values():
        overrides = (*base_overrides, *param.condition_overrides(), override(param.key, value))
        try:
            check_config(compose_train(overrides), on_this_machine=on_this_machine)
        except UserInputError as error:
            raise UserInputError(
                f"sweep.space.{param.key}: a trial with {override(param.key, value)} cannot run: {error}"
            ) from None


def _cross_validates(settings: SweepSettings, base: DictConfig) -> bool:
    """``cv.folds >= 2``, the one switch of train.py and sweep.py alike; a cross-validated trial is scored by one
    fold metric (its folds' mean), so a trade-off study or ``sweep.constraints`` are refused with it."""
    from sweeplab.cv.folds import cross_validates  # noqa: PLC0415

    if not cross_validates(base):
        return False
    if settings.multi_objective or settings.constraints:
        needs = "a trade-off study (sweep.metric a list)" if settings.multi_objective else "sweep.constraints"
        raise ConfigError(
            "cv.folds",
            base.cv.folds,
            f"cross-validates each trial, scored by one fold metric (its folds' mean); {needs} needs cv.folds=0",
        )
    return True


def _check_objective(settings: SweepSettings, base: DictConfig) -> None:
    for constraint in settings.constraints:
        if constraint.metric.startswith("test_") and not base.get("evaluate_test", True):
            raise ConfigError(
                "sweep.constraints",
                constraint.text,
                f"needs {constraint.metric}, and evaluate_test=false tests no trial",
            )


def _warn_about_sampler(settings: SweepSettings) -> None:
    population = settings.sampler.get("population_size", 50)  # NSGAIISampler's default
    if settings.sampler["name"] == "nsgaii" and isinstance(population, int) and population >= settings.n_trials:
        log.warning(
            "sweep.sampler.population_size=%d and sweep.n_trials=%d: every trial is of NSGA-II's first "
            "generation, sampled at random; set a population_size below n_trials",
            population,
            settings.n_trials,
        )


def _warn_about_fixed_values(settings: SweepSettings, command_line_overrides: tuple[str, ...]) -> None:
    searched = set(settings.space.keys)
    for item in command_line_overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in searched:
            log.warning("%s is searched: every trial overrides %r with its own value", key, item)

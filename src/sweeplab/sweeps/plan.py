"""Check a sweep before any trial runs, and settle where it writes.

Every trial composes ``sweep.overrides`` + the command line's training overrides
+ its sampled values. Before the study starts, the base config is composed and
validated, and so is each search-space bound (each choice, ``low`` and ``high``,
with the conditions that make the parameter active): a value no trial could run
is refused in one line instead of failing trial after trial.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from sweeplab.cli.common import CONFIG_DIR
from sweeplab.config.preflight import compose_checked
from sweeplab.config.validate import validate_config
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.sweeps.settings import SweepSettings
from sweeplab.sweeps.space import override
from sweeplab.sweeps.study import default_storage_url

log = logging.getLogger(__name__)

CV_OBJECTIVE_MODULE = "sweeplab.cv.objective"


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: its settings, the training overrides all trials share, and where it writes."""

    settings: SweepSettings
    base_overrides: tuple[str, ...]
    study_dir: Path
    storage_url: str

    def trial_dir(self, number: int) -> Path:
        return self.study_dir / f"trial_{number:04d}"


def plan_sweep(settings: SweepSettings, command_line_overrides: tuple[str, ...] = ()) -> SweepPlan:
    """Compose and validate what the trials will run; raise :class:`UserInputError` for bad input."""
    base_overrides = (*settings.overrides, *command_line_overrides)
    try:
        base = _composed(base_overrides)
    except UserInputError as error:
        raise UserInputError(f"training overrides {' '.join(base_overrides) or '(none)'}: {error}") from None
    _warn_about_fixed_values(settings, command_line_overrides)
    if not settings.report_only:
        _check_space_bounds(settings, base_overrides)
        _check_objective(settings, base)
    study_dir = Path(settings.dir or Path(base.paths.output_dir) / "sweeps" / settings.study_name).resolve()
    return SweepPlan(settings, base_overrides, study_dir, settings.storage or default_storage_url(study_dir))


def _composed(overrides: tuple[str, ...]) -> DictConfig:
    cfg = compose_checked(CONFIG_DIR, "train", overrides)
    validate_config(cfg)
    return cfg


def _check_space_bounds(settings: SweepSettings, base_overrides: tuple[str, ...]) -> None:
    for param in settings.space:
        for value in param.extreme_values():
            overrides = (*base_overrides, *param.condition_overrides(), override(param.key, value))
            try:
                _composed(overrides)
            except UserInputError as error:
                raise UserInputError(f"sweep.space.{param.key}: a trial with {override(param.key, value)} "
                                     f"cannot run: {error}") from None


def _check_objective(settings: SweepSettings, base: DictConfig) -> None:
    if settings.objective != "cv":
        return
    if importlib.util.find_spec(CV_OBJECTIVE_MODULE) is None:
        raise ConfigError("sweep.objective", "cv", f"needs {CV_OBJECTIVE_MODULE}, which is not installed")
    folds = base.get("cv", {}).get("folds")
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError("cv.folds", folds, "must be an integer >= 2 for sweep.objective=cv")


def _warn_about_fixed_values(settings: SweepSettings, command_line_overrides: tuple[str, ...]) -> None:
    searched = set(settings.space.keys)
    for item in command_line_overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in searched:
            log.warning("%s is searched: every trial overrides %r with its own value", key, item)

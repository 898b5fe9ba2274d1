"""``sweep.warm_start=PATH``: seed a new study with earlier results, so that its sampler starts from them.

``PATH`` is another study (its sweep folder, its ``study.db`` / ``study.journal``, or a storage URL:
its complete trials of every study in that storage) or a folder of runs (``outputs/runs``, a grid's
multirun folder: every completed ``results.json`` below it). Each earlier result whose values of the
keys this space shares lie in this space (its distributions) is added to the study as a finished
trial (Optuna's ``add_trial``): it counts toward ``n_trials`` and TPE models it from its first
proposal on. A result missing a key of this space is added without it (as a conditional parameter
left out); one with a value outside this space, or without this study's metric, is left out. The
import happens once per study (a resumed study does not import again); the report says how many.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import optuna
import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from sweeplab.errors import ConfigError, UserInputError
from sweeplab.runs.results import COMPLETED, RunResults
from sweeplab.sweeps.objectives import run_metric
from sweeplab.sweeps.settings import SweepSettings
from sweeplab.sweeps.space import SearchSpace, overrides_for
from sweeplab.sweeps.study import JOURNAL_SCHEME, open_storage

log = logging.getLogger(__name__)

WARM_START_ATTR = "sweeplab:warm_start"  # the study's user attribute: {"source": PATH, "imported": N, "offered": M}
IMPORTED_FROM = "warm_start"  # an imported trial's user attribute: where it came from
STUDY_FILES = ("study.db", "study.journal")

Earlier = tuple[dict[str, Any], list[float], str]  # (config values, objective values, where from)


def read_warm_start(settings: SweepSettings) -> list[Earlier]:
    """The earlier results ``settings.warm_start`` names (none without it), read before the study is opened:
    a source that cannot be read is refused in one line before anything is written."""
    return list(earlier_results(settings.warm_start, settings)) if settings.warm_start else []


def warm_start(
    study: optuna.Study, settings: SweepSettings, earlier: list[Earlier], base_overrides: Sequence[str] = ()
) -> int:
    """Add ``earlier`` (:func:`read_warm_start`) to ``study``, once per study; returns how many were added.

    Each imported trial's training overrides are this study's (``base_overrides``) with its parameters: the
    config ``best.yaml`` retrains when an imported trial is the best."""
    source = settings.warm_start
    if not source or WARM_START_ATTR in study.user_attrs:
        return 0
    offered = imported = 0
    for values, objectives, origin in earlier:
        offered += 1
        trial = as_trial(settings.space, values, objectives, origin, base_overrides)
        if trial is not None:
            study.add_trial(trial)
            imported += 1
    study.set_user_attr(WARM_START_ATTR, {"source": source, "imported": imported, "offered": offered})
    log.info("sweep.warm_start=%s: %d of %d earlier results imported", source, imported, offered)
    return imported


def as_trial(
    space: SearchSpace,
    values: Mapping[str, Any],
    objectives: list[float],
    origin: str,
    base_overrides: Sequence[str] = (),
) -> optuna.trial.FrozenTrial | None:
    """A finished trial of this space for an earlier result, or None when its values lie outside the space."""
    params: dict[str, Any] = {}
    distributions: dict[str, BaseDistribution] = {}
    for param in space:
        if not param.is_active(params) or param.key not in values:
            continue
        value = _in_distribution(param.distribution, values[param.key])
        if value is None:
            return None
        params[param.key], distributions[param.key] = value, param.distribution
    if not params or any(v is None or not math.isfinite(v) for v in objectives):
        return None
    attributes = {IMPORTED_FROM: origin, "overrides": [*base_overrides, *overrides_for(params)]}
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE, params=params, distributions=distributions, values=objectives, user_attrs=attributes
    )


def _in_distribution(distribution: BaseDistribution, value: Any) -> Any:
    """``value`` as the distribution holds it, or None when the distribution cannot hold it."""
    try:
        if isinstance(distribution, CategoricalDistribution):
            return value if distribution._contains(distribution.to_internal_repr(value)) else None  # noqa: SLF001
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        value = int(value) if isinstance(distribution, IntDistribution) and float(value).is_integer() else value
        return value if distribution._contains(float(value)) else None  # noqa: SLF001 (Optuna's range check)
    except (ValueError, TypeError):
        return None


def earlier_results(source: str, settings: SweepSettings) -> Iterator[Earlier]:
    """The earlier results ``source`` holds, as (config values, objective values, origin)."""
    url = storage_url_of(source)
    if url is not None:
        yield from _study_results(url, source, settings)
        return
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            "sweep.warm_start",
            source,
            "must be a sweep folder, a folder of runs, a study.db or study.journal, or a storage URL",
        )
    yield from _run_results(folder, settings)


def storage_url_of(source: str) -> str | None:
    """The storage a ``sweep.warm_start`` names: a URL, a study file, or a sweep folder holding one; else None."""
    if "://" in source:
        return source
    path = Path(source).expanduser().resolve()
    if path.is_dir():
        path = next((path / name for name in STUDY_FILES if (path / name).is_file()), path)
    if path.is_file() and path.name.endswith(".journal"):
        return f"{JOURNAL_SCHEME}{path}"
    if path.is_file():
        return f"sqlite:///{path}"
    return None


def _study_results(url: str, source: str, settings: SweepSettings) -> Iterator[Earlier]:
    try:
        storage = open_storage(url, settings.heartbeat_s)
        names = optuna.get_all_study_names(storage)
    except (UserInputError, ValueError, OSError) as error:
        raise ConfigError("sweep.warm_start", source, f"cannot be read as a study: {error}") from None
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            earlier = optuna.load_study(study_name=name, storage=storage)
        if earlier.metric_names is not None and tuple(earlier.metric_names) != settings.metrics:
            log.warning(
                "sweep.warm_start: study %r scored %s, not %s: left out",
                name,
                earlier.metric_names,
                list(settings.metrics),
            )
            continue
        for trial in earlier.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            yield dict(trial.params), list(trial.values), f"{name}#{trial.number}"


def _run_results(folder: Path, settings: SweepSettings) -> Iterator[Earlier]:
    for path in sorted(folder.rglob("results.json")):
        try:
            results = RunResults.read(path)
        except UserInputError:
            continue
        if results.status != COMPLETED:
            continue
        objectives = [run_metric(results, name) for name in settings.metrics]
        if any(value is None for value in objectives):
            continue
        yield {**results.hparams, **_given_overrides(path.parent)}, cast(list[float], objectives), str(path.parent)


def _given_overrides(run_dir: Path) -> dict[str, Any]:
    """``KEY=VALUE`` overrides the run was given (``.hydra/overrides.yaml``), its group choices among them."""
    try:
        given = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        return {}
    values = {}
    for override in given if isinstance(given, list) else []:
        key, sep, text = str(override).lstrip("+~").partition("=")
        if sep:
            try:
                values[key] = yaml.safe_load(text)
            except yaml.YAMLError:
                values[key] = text
    return values

"""A sweep's settings, a Hydra config group: ``conf/sweep/default.yaml``, then ``sweeps/NAME.yaml``, then ``sweep.KEY=VALUE``.

Hydra composes them as it composes a training config (:func:`sweeplab.config.compose.compose_train`,
root config ``conf/sweep_study.yaml``), with the same override grammar. The defaults file
documents every key; :class:`SweepConfig`, the group's schema in Hydra's ConfigStore, types
them (a value of the wrong type, or an unknown key, is refused as it is composed) and holds
the range of each, checked once composed. A sweep file sets any key; the command line
changes one value (``sweep.n_trials=8``) or one field of a search-space entry
(``sweep.space.optimizer.lr.high=0.5``). Anything that is not a known key, or not an
allowed value, is refused with one line naming it.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Optional, cast

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sweeplab.config.compose import compose_train
from sweeplab.config.launchers import CLUSTER_LAUNCHERS, missing_launcher
from sweeplab.config.locations import CONFIG_DIR, SWEEPS_DIR
from sweeplab.constraints import Constraints, Interval, NoneValue, Options, Satisfies, check_params
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.sweeps.objectives import TrialConstraint, read_constraints, read_objectives
from sweeplab.sweeps.space import SearchSpace

SWEEP_CONFIG = "sweep_study"  # conf/sweep_study.yaml: the root config of a sweep's settings
SCHEMA_OPTION = "schema"  # sweep/schema in Hydra's ConfigStore: SweepConfig
CONSTRAINTS_KEY = "sweep.constraints"
OPTUNA_CLASSES_FILE = Path(CONFIG_DIR) / "sweep" / "_optuna.yaml"
# sweep.sampler.name / sweep.pruner.name -> the config node of the Optuna class (its _target_ and default arguments)
OPTUNA_CLASSES: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(OPTUNA_CLASSES_FILE.read_text())
SAMPLER_CLASSES = {name: node["_target_"].rsplit(".", 1)[-1] for name, node in OPTUNA_CLASSES["sampler"].items()}
SAMPLERS = tuple(OPTUNA_CLASSES["sampler"])
PRUNERS = tuple(OPTUNA_CLASSES["pruner"])
BEST_PLOTS, ALL_PLOTS, NO_PLOTS = "best", "all", "none"  # sweep.trial_plots: whose plots are drawn
TRIAL_PLOTS = (BEST_PLOTS, ALL_PLOTS, NO_PLOTS)
LAUNCHERS = ("local", *CLUSTER_LAUNCHERS)  # local: worker processes here; slurm: a SLURM job per worker


def _setting(*constraints: Any) -> Any:
    """A required field (its default is in conf/sweep/default.yaml) with the values it may take."""
    return field(default=MISSING, metadata={"constraints": list(constraints)})


def _non_empty(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


@dataclass
class ClusterConfig:
    """Each worker job's resources with ``sweep.launcher=slurm`` (the names of ``conf/hydra/launcher/slurm.yaml``)."""

    partition: Optional[str] = None  # noqa: UP045 (OmegaConf)
    timeout_min: int = 60
    max_num_timeout: int = 3
    cpus_per_task: int = 1
    gpus_per_node: Optional[int] = None  # noqa: UP045
    mem_gb: Optional[int] = None  # noqa: UP045
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)

    parameter_constraints: typing.ClassVar[dict[str, list]] = {
        "partition": [NoneValue(), Satisfies(_non_empty, "a partition name")],
        "timeout_min": [Interval(Integral, 1, None)],
        "max_num_timeout": [Interval(Integral, 0, None)],
        "cpus_per_task": [Interval(Integral, 1, None)],
        "gpus_per_node": [NoneValue(), Interval(Integral, 0, None)],
        "mem_gb": [NoneValue(), Interval(Integral, 1, None)],
    }


@dataclass
class SweepConfig:
    """The type and range of every sweep setting (see ``conf/sweep/default.yaml`` for what each does)."""

    overrides: list[str] = _setting()
    space: dict[str, Any] = _setting()
    metric: Any = _setting()  # one name or a list: checked by sweeplab.sweeps.objectives.read_objectives
    direction: Any = _setting()
    constraints: Any = _setting()  # a list of NAME OP NUMBER: read_constraints
    n_trials: int = _setting(Interval(Integral, 1, None))
    sampler: dict[str, Any] = _setting()
    pruner: dict[str, Any] = _setting()
    storage: Optional[str] = _setting(NoneValue(), Satisfies(_non_empty, "a storage URL"))  # noqa: UP045 (OmegaConf)
    study_name: Optional[str] = _setting(NoneValue(), Satisfies(_non_empty, "a non-empty string"))  # noqa: UP045
    dir: Optional[str] = _setting(NoneValue(), Satisfies(_non_empty, "a folder"))  # noqa: UP045
    workers: int = _setting(Interval(Integral, 1, None))
    max_failures: int = _setting(Interval(Integral, 1, None))
    heartbeat_s: int = _setting(Interval(Integral, 1, None))
    report_only: bool = _setting()
    launcher: str = _setting(Options(LAUNCHERS))
    wait: bool = _setting()
    warm_start: Optional[str] = _setting(NoneValue(), Satisfies(_non_empty, "a folder, a study file or a storage URL"))  # noqa: UP045
    trial_timeout_min: Optional[float] = _setting(NoneValue(), Interval(Real, 0, None, closed="neither"))  # noqa: UP045
    trial_plots: str = _setting(Options(TRIAL_PLOTS))
    cluster: ClusterConfig = field(
        default_factory=ClusterConfig, metadata={"constraints": ClusterConfig.parameter_constraints}
    )


RETIRED = {  # settings of earlier versions, and what replaced them
    "objective": "a sweep cross-validates each trial when cv.folds >= 2 (a training override, as for train.py)",
}
SETTING_NAMES = tuple(f.name for f in dataclasses.fields(SweepConfig))
SETTING_CONSTRAINTS = {
    f.name: f.metadata["constraints"] for f in dataclasses.fields(SweepConfig) if f.metadata.get("constraints")
}
OPTION_CONSTRAINTS: dict[
    str, Constraints
] = {  # the name of sampler and pruner (their other keys go to the Optuna class)
    "sampler.name": [Options(SAMPLERS)],
    "pruner.name": [Options(PRUNERS)],
    "sampler.seed": [NoneValue(), Interval(Integral, 0, None)],
}


@dataclass(frozen=True)
class SweepSettings:
    """The checked settings of one sweep: what is read from them (the study's name, the search space, the
    objectives and constraints), and every other setting as composed and checked, in :attr:`given`, read as
    an attribute (``settings.n_trials``): the settings are listed once, in :class:`SweepConfig`."""

    source: Path
    study_name: str
    space: SearchSpace
    metrics: tuple[str, ...]  # one objective, or several: a trade-off (multi-objective) study
    directions: tuple[str, ...]
    constraints: tuple[TrialConstraint, ...]
    given: Mapping[str, Any]  # the other SweepConfig fields, checked (sweep.n_trials, sweep.workers, ...)

    def __getattr__(self, name: str) -> Any:
        """A setting of :class:`SweepConfig` that needs no reading: as given (``n_trials``, ``storage``, ...)."""
        given = self.__dict__.get("given", {})
        if name in SETTING_NAMES and name in given:
            return given[name]
        raise AttributeError(f"{type(self).__name__} has no setting {name!r}")

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    @property
    def metric(self) -> str:
        """The objective of a single-objective study (a trade-off study has :attr:`metrics`)."""
        return self._single(self.metrics)

    @property
    def direction(self) -> str:
        return self._single(self.directions)

    def _single(self, values: tuple[str, ...]) -> str:
        if self.multi_objective:
            raise RuntimeError(f"study {self.study_name!r} has {len(values)} objectives: use metrics and directions")
        return values[0]


# Which samplers cannot run a study, and why (Optuna 5): each rule once, its words the refusal's.
def _only_categorical(settings: SweepSettings) -> bool:
    return all(param.type == "categorical" for param in settings.space)


SAMPLER_LIMITS: tuple[tuple[str, Any, str], ...] = (
    (
        "cmaes",
        lambda s: s.multi_objective,
        "CmaEsSampler optimizes one objective; a trade-off study needs tpe, gp, nsgaii or random",
    ),
    (
        "cmaes",
        lambda s: bool(s.constraints),
        "CmaEsSampler does not model sweep.constraints (it would keep searching "
        "where they fail); use tpe, gp or nsgaii",
    ),
    (
        "cmaes",
        _only_categorical,
        "CmaEsSampler searches float and int parameters (categorical ones it samples at "
        "random) and this space has none; use tpe, gp or random",
    ),
)


def find_sweep_file(name: str | None) -> Path:
    """``NAME`` when it is the path of a YAML file, else ``sweeps/NAME.yaml`` here or among sweeplab's own."""
    folders = [Path("sweeps"), SWEEPS_DIR]
    available = ", ".join(sorted({path.stem for folder in folders for path in folder.glob("*.yaml")})) or "none"
    if not name:
        raise ConfigError("sweep", name, f"missing: name a sweep file in {SWEEPS_DIR} ({available}) or a .yaml path")
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml") and as_path.is_file():
        return as_path.resolve()
    for folder in folders:
        candidate = folder / f"{name}.yaml"
        if "/" not in name and candidate.is_file():
            return candidate.resolve()
    raise ConfigError("sweep", name, f"no such sweep: one of {available} (sweeps/*.yaml), or the path of a .yaml file")


def load_settings(source: Path, command_line: Sequence[str] = ()) -> SweepSettings:
    """Compose the defaults, the sweep file and ``sweep.KEY=VALUE`` arguments with Hydra, and check the result."""
    return _checked(source, compose_settings(source, command_line))


def compose_settings(source: Path, command_line: Sequence[str] = ()) -> dict[str, Any]:
    """The ``sweep:`` node Hydra composes from ``conf/sweep_study.yaml``: ``conf/sweep/default.yaml`` typed by
    :class:`SweepConfig`, then the sweep file (a ``sweep`` group option), then the ``sweep.*`` overrides.

    Hydra refuses an unknown key or a value of the wrong type (:func:`sweeplab.config.compose.compose_train` says
    so in one line). Two kinds of argument Hydra's override grammar cannot read are applied to the composed node
    instead: ``sweep.space.KEY.FIELD=VALUE`` (a search-space entry's key holds dots: ``optimizer.lr``) and
    ``sweep.constraints=[num_params<=100000]`` (unquoted ``<`` and ``>``), its value read as YAML.
    """
    file_settings = _read_yaml(source)
    for argument in command_line:
        head = argument.partition("=")[0].lstrip("+~").removeprefix("sweep.")
        if head in RETIRED:
            raise ConfigError(
                f"sweep.{head}", _yaml_value(argument.partition("=")[2]), f"no longer a setting; {RETIRED[head]}"
            )
    option = _register(source, file_settings)
    hydra_args = [_option_bag(a) for a in command_line if not _applied_after(a)]
    try:
        composed = compose_train(
            [f"sweep={option}", *_fresh_options(file_settings, hydra_args), *hydra_args], config_name=SWEEP_CONFIG
        )
    except UserInputError as error:  # name the file, not its ConfigStore option
        raise UserInputError(str(error).replace(f"(in sweep/{option})", f"(in {source})")) from None
    settings = cast(dict[str, Any], OmegaConf.to_container(composed.sweep, resolve=True))
    for argument in command_line:
        dotted, _, text = argument.partition("=")
        if dotted == CONSTRAINTS_KEY:
            settings["constraints"] = _yaml_value(text)
        elif _applied_after(argument):
            settings["space"] = _with_space_field(
                settings["space"], dotted.removeprefix("sweep.space."), _yaml_value(text), dotted
            )
    return settings


def _register(source: Path, file_settings: dict[str, Any]) -> str:
    """Store the schema and the sweep file in Hydra's ConfigStore (group ``sweep``); returns the file's option name.

    Sweep files stay where users keep them (``sweeps/NAME.yaml``, or any path), outside ``conf/``'s layout of
    one folder per group; :func:`find_sweep_file` finds the one named, and the ConfigStore puts it on Hydra's
    search path as the option ``sweep=NAME``. Its YAML is data: no ``defaults`` list, no ``_target_`` is run.
    """
    store = ConfigStore.instance()
    store.store(group="sweep", name=SCHEMA_OPTION, node=SweepConfig)
    option = source.stem if source.stem not in (SCHEMA_OPTION, "default") else f"{source.stem}_sweep"
    if "defaults" in file_settings:
        raise ConfigError(
            "sweep.defaults",
            file_settings["defaults"],
            f"unknown setting (in {source}): a sweep file sets the keys of conf/sweep/default.yaml",
        )
    _refuse_unknown_keys(source, file_settings)
    store.store(group="sweep", name=option, node=OmegaConf.create(file_settings))
    return option


def _refuse_unknown_keys(source: Path, file_settings: dict[str, Any]) -> None:
    """A key of the sweep file that the schema lacks, named with the file and the closest known key (Hydra would
    name the ConfigStore option, not the file)."""
    try:
        OmegaConf.merge(OmegaConf.structured(SweepConfig), file_settings)
    except (ConfigKeyError, ConfigAttributeError) as error:
        key = str(error.full_key or error.key)
        parent, _, leaf = key.rpartition(".")
        known = [f.name for f in dataclasses.fields(ClusterConfig if parent == "cluster" else SweepConfig)]
        close = difflib.get_close_matches(leaf, known, n=1)
        hint = f": did you mean sweep.{parent + '.' if parent else ''}{close[0]}?" if close else ""
        raise UserInputError(
            f"sweep.{key} is not a config key (in {source}){hint} keys of sweep"
            f"{'.' + parent if parent else ''}: {', '.join(sorted(known))}"
        ) from None
    except OmegaConfBaseException:  # a value of the wrong type: Hydra names it as it composes
        pass


def _option_bag(argument: str) -> str:
    """``sweep.sampler.KEY=V`` and ``sweep.pruner.KEY=V`` as Hydra's ``++`` (add or override): their keys are the
    Optuna class's arguments, which the sweep file need not have set."""
    open_nodes = ("sweep.sampler.", "sweep.pruner.")
    return f"++{argument}" if argument.startswith(open_nodes) and "=" in argument else argument


def _applied_after(argument: str) -> bool:
    """``sweep.space.KEY.FIELD=VALUE`` (one field of a search-space entry, KEY may hold dots) or
    ``sweep.constraints=VALUE``: applied to the composed settings, not by Hydra."""
    dotted = argument.partition("=")[0]
    return dotted == CONSTRAINTS_KEY or (
        dotted.startswith("sweep.space.") and "." in dotted.removeprefix("sweep.space.")
    )


def _fresh_options(file_settings: Mapping[str, Any], hydra_args: Sequence[str]) -> list[str]:
    """``~sweep.GROUP.KEY`` for the options the sweep file gave its sampler or pruner, when the command line names
    another one: another sampler or pruner starts from its own defaults (a seed carries over)."""
    dropped = []
    given = {a.partition("=")[0].lstrip("+~") for a in hydra_args}
    for group in ("sampler", "pruner"):
        named = [a.partition("=")[2] for a in hydra_args if a.partition("=")[0].lstrip("+") == f"sweep.{group}.name"]
        found = file_settings.get(group)
        options = found if isinstance(found, Mapping) else {}
        if named and named[-1] != options.get("name"):
            dropped += [
                f"~sweep.{group}.{key}"
                for key in options
                if key not in ("name", "seed") and f"sweep.{group}.{key}" not in given
            ]
    return dropped


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as error:
        raise UserInputError(f"cannot read sweep file {path}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # noqa: BLE001 (OmegaConf's own errors: bad interpolations and the like)
        raise UserInputError(
            f"cannot read sweep file {path}: {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserInputError(f"sweep file {path} must hold a mapping of settings, not {type(loaded).__name__}")
    for key, replacement in RETIRED.items():
        if key in loaded:
            raise ConfigError(f"sweep.{key}", loaded[key], f"no longer a setting (in {path}); {replacement}")
    return cast(dict[str, Any], loaded)  # YAML mapping keys: strings


def _yaml_value(text: str) -> Any:
    """A command-line value read as OmegaConf reads YAML (``1e-4`` is a float, ``[a, b]`` a list)."""
    try:
        return cast(dict[str, Any], OmegaConf.to_container(OmegaConf.from_dotlist([f"value={text}"])))["value"]
    except Exception:  # noqa: BLE001 (unparsable YAML: keep the text as typed)
        return text


def _with_space_field(space: dict[str, Any], path: str, value: Any, dotted: str) -> dict[str, Any]:
    """``optimizer.lr.high`` -> ``space["optimizer.lr"]["high"]``: parameter keys hold dots themselves."""
    for key in sorted(space, key=len, reverse=True):
        if path.startswith(f"{key}.") and "." not in path[len(key) + 1 :]:
            return {**space, key: {**space[key], path[len(key) + 1 :]: value}}
    raise ConfigError(dotted, value, f"names no field of a search-space entry; entries: {', '.join(space) or 'none'}")


def _checked(source: Path, s: dict[str, Any]) -> SweepSettings:
    check_params(s, SETTING_CONSTRAINTS, prefix="sweep.")
    check_params(
        {f"{group}.{k}": v for group in ("sampler", "pruner") for k, v in s[group].items()},
        OPTION_CONSTRAINTS,
        prefix="sweep.",
    )
    for group in ("sampler", "pruner"):
        if "name" not in s[group]:
            raise ConfigError(
                f"sweep.{group}.name", None, f"missing; one of {', '.join(SAMPLERS if group == 'sampler' else PRUNERS)}"
            )
    reason = None if s["report_only"] else missing_launcher(s["launcher"], hydra_plugin=False)
    if reason is not None:
        raise ConfigError("sweep.launcher", s["launcher"], f"cannot submit jobs: {reason}")
    metrics, directions = read_objectives(s["metric"], s["direction"])
    constraints = read_constraints(s["constraints"])
    derived = {"study_name", "space", "metric", "direction", "constraints"}
    given = {name: s[name] for name in SETTING_NAMES if name not in derived}
    given.update(
        overrides=tuple(s["overrides"]),
        sampler=dict(s["sampler"]),
        pruner=dict(s["pruner"]),
        cluster=dict(s["cluster"]),
    )
    settings = SweepSettings(
        source=source,
        study_name=s["study_name"] or source.stem,
        space=SearchSpace.from_config(s["space"]),
        metrics=metrics,
        directions=directions,
        constraints=constraints,
        given=given,
    )
    for name, fails, reason in SAMPLER_LIMITS:
        if settings.sampler["name"] == name and fails(settings):
            raise ConfigError("sweep.sampler.name", name, reason)
    return settings

"""A sweep's settings: ``conf/sweep/default.yaml``, then ``sweeps/NAME.yaml``, then ``sweep.KEY=VALUE``.

The defaults file documents every key; :class:`SweepConfig` types them (an OmegaConf
structured config, so a value of the wrong type is refused as it is merged) and holds
the range of each. A sweep file sets any key; the command line changes one value
(``sweep.n_trials=8``) or one field of a search-space entry
(``sweep.space.optimizer.lr.high=0.5``). Anything that is not a known key, or not an
allowed value, is refused with one line naming it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from sweeplab.config.launchers import CLUSTER_LAUNCHERS, missing_launcher
from sweeplab.config.locations import CONFIG_DIR, SWEEPS_DIR
from sweeplab.constraints import Interval, NoneValue, Options, Satisfies, check_params, constraints_of_type, describe
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.sweeps.objectives import TrialConstraint, read_constraints, read_objectives
from sweeplab.sweeps.space import SearchSpace

DEFAULTS_FILE = Path(CONFIG_DIR) / "sweep" / "default.yaml"
SAMPLER_CLASSES = {  # sweep.sampler.name -> the class in optuna.samplers
    "tpe": "TPESampler", "random": "RandomSampler", "gp": "GPSampler", "cmaes": "CmaEsSampler", "nsgaii": "NSGAIISampler",
}
SAMPLERS = tuple(SAMPLER_CLASSES)
PRUNERS = ("median", "hyperband", "wilcoxon", "none")
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
        "timeout_min": [Interval(Integral, 1, None)], "max_num_timeout": [Interval(Integral, 0, None)],
        "cpus_per_task": [Interval(Integral, 1, None)], "gpus_per_node": [NoneValue(), Interval(Integral, 0, None)],
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
    objective: str = _setting(Options(("holdout", "cv")))
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
    cluster: ClusterConfig = field(default_factory=ClusterConfig,
                                   metadata={"constraints": ClusterConfig.parameter_constraints})


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(SweepConfig))
SETTING_CONSTRAINTS = {f.name: f.metadata["constraints"] for f in dataclasses.fields(SweepConfig)
                       if f.metadata.get("constraints")}
OPTION_CONSTRAINTS = {  # the name of sampler and pruner (their other keys go to the Optuna class)
    "sampler.name": [Options(SAMPLERS)], "pruner.name": [Options(PRUNERS)],
    "sampler.seed": [NoneValue(), Interval(Integral, 0, None)],
}


@dataclass(frozen=True)
class SweepSettings:
    """The checked settings of one sweep."""

    source: Path
    study_name: str
    overrides: tuple[str, ...]
    space: SearchSpace
    metrics: tuple[str, ...]  # one objective, or several: a trade-off (multi-objective) study
    directions: tuple[str, ...]
    n_trials: int
    objective: str
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    storage: str | None
    dir: str | None
    workers: int
    max_failures: int
    heartbeat_s: int
    report_only: bool
    launcher: str = "local"
    wait: bool = True
    cluster: dict[str, Any] = field(default_factory=dict)
    constraints: tuple[TrialConstraint, ...] = ()

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
    ("cmaes", lambda s: s.multi_objective, "CmaEsSampler optimizes one objective; a trade-off study needs tpe, gp, "
                                           "nsgaii or random"),
    ("cmaes", lambda s: bool(s.constraints), "CmaEsSampler does not model sweep.constraints (it would keep searching "
                                             "where they fail); use tpe, gp or nsgaii"),
    ("cmaes", _only_categorical, "CmaEsSampler searches float and int parameters (categorical ones it samples at "
                                 "random) and this space has none; use tpe, gp or random"),
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
    """Merge the defaults, the sweep file and ``sweep.KEY=VALUE`` arguments, and check the result."""
    merged = _typed(OmegaConf.structured(SweepConfig), _read_yaml(DEFAULTS_FILE), where=str(DEFAULTS_FILE))
    merged = _typed(merged, _read_yaml(source), where=str(source))
    for argument in command_line:
        merged = _apply_argument(merged, argument)
    return _checked(source, OmegaConf.to_container(merged))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as error:
        raise UserInputError(f"cannot read sweep file {path}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # noqa: BLE001 (OmegaConf's own errors: bad interpolations and the like)
        raise UserInputError(f"cannot read sweep file {path}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserInputError(f"sweep file {path} must hold a mapping of settings, not {type(loaded).__name__}")
    return loaded


def _typed(settings: DictConfig, update: Mapping[str, Any], where: str) -> DictConfig:
    """``settings`` with ``update`` merged in; an unknown key or a value of the wrong type is refused."""
    try:
        return OmegaConf.merge(settings, update)
    except ConfigKeyError as error:
        key = str(error.full_key or error.key)
        parent, _, _ = key.rpartition(".")
        known = (f"sweep.{parent}.{name}" for name in settings[parent]) if parent else (f"sweep.{n}" for n in SETTING_NAMES)
        raise ConfigError(f"sweep.{key}", _value_at(update, key), f"unknown setting (in {where}); known: "
                          f"{', '.join(known)}") from None
    except ValidationError as error:
        hint = _hint_at(str(error.full_key))
        allowed = describe(constraints_of_type(hint) or []) if hint is not None else "another kind of value"
        raise ConfigError(f"sweep.{error.full_key}", _value_at(update, str(error.full_key)),
                          f"must be {allowed} (in {where})") from None
    except OmegaConfBaseException as error:
        raise UserInputError(f"{where}: {str(error).splitlines()[0]}") from None


def _hint_at(dotted: str) -> Any:
    """The type hint of the setting ``dotted`` (``cluster.mem_gb``), or None."""
    hint: Any = SweepConfig
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(hint):
            return None
        hint = typing.get_type_hints(hint).get(part)
    return hint


def _value_at(update: Mapping[str, Any], dotted: str) -> Any:
    node: Any = update
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _apply_argument(settings: DictConfig, argument: str) -> DictConfig:
    """Apply ``sweep.KEY=VALUE`` (VALUE read as YAML) to the merged settings."""
    dotted, _, text = argument.partition("=")
    path = dotted.removeprefix("sweep.")
    value = _yaml_value(text)
    head, _, rest = path.partition(".")
    if head not in SETTING_NAMES:
        raise ConfigError(dotted, value, f"unknown setting; known: {', '.join('sweep.' + n for n in SETTING_NAMES)}")
    if head == "space" and rest:
        return _typed(settings, {"space": _with_space_field(OmegaConf.to_container(settings.space), rest, value, dotted)},
                      where="the command line")
    if head in ("sampler", "pruner") and rest == "name" and value != settings[head].get("name"):
        # another sampler or pruner starts from its own defaults (a seed carries over)
        seed = {"seed": settings[head]["seed"]} if "seed" in settings[head] else {}
        OmegaConf.update(settings, head, {"name": value, **seed}, merge=False)
        return settings
    if not rest and isinstance(settings[head], DictConfig) and not isinstance(value, Mapping):
        raise ConfigError(dotted, value, f"must be a mapping of {', '.join(map(str, settings[head])) or 'settings'}")
    if rest and not isinstance(settings[head], DictConfig):
        raise ConfigError(dotted, value, f"sweep.{head} has no field {rest!r}")
    if not rest and _hint_at(head) is Any:  # a name or a list (metric, direction, constraints): replaced, as typed
        OmegaConf.update(settings, head, value, merge=False)
        return settings
    update: Any = value
    for part in reversed(rest.split(".") if rest else []):
        update = {part: update}
    return _typed(settings, {head: update}, where="the command line")


def _yaml_value(text: str) -> Any:
    """A command-line value read as OmegaConf reads YAML (``1e-4`` is a float, ``[a, b]`` a list)."""
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([f"value={text}"]))["value"]
    except Exception:  # noqa: BLE001 (unparsable YAML: keep the text as typed)
        return text


def _with_space_field(space: dict[str, Any], path: str, value: Any, dotted: str) -> dict[str, Any]:
    """``optimizer.lr.high`` -> ``space["optimizer.lr"]["high"]``: parameter keys hold dots themselves."""
    for key in sorted(space, key=len, reverse=True):
        if path.startswith(f"{key}.") and "." not in path[len(key) + 1:]:
            return {**space, key: {**space[key], path[len(key) + 1:]: value}}
    raise ConfigError(dotted, value, f"names no field of a search-space entry; entries: {', '.join(space) or 'none'}")


def _checked(source: Path, s: dict[str, Any]) -> SweepSettings:
    check_params(s, SETTING_CONSTRAINTS, prefix="sweep.")
    check_params({f"{group}.{k}": v for group in ("sampler", "pruner") for k, v in s[group].items()},
                 OPTION_CONSTRAINTS, prefix="sweep.")
    for group in ("sampler", "pruner"):
        if "name" not in s[group]:
            raise ConfigError(f"sweep.{group}.name", None, f"missing; one of {', '.join(SAMPLERS if group == 'sampler' else PRUNERS)}")
    reason = None if s["report_only"] else missing_launcher(s["launcher"], hydra_plugin=False)
    if reason is not None:
        raise ConfigError("sweep.launcher", s["launcher"], f"cannot submit jobs: {reason}")
    metrics, directions = read_objectives(s["metric"], s["direction"])
    constraints = read_constraints(s["constraints"])
    if s["objective"] == "cv" and (len(metrics) > 1 or constraints):
        needs = "a trade-off study (sweep.metric a list)" if len(metrics) > 1 else "sweep.constraints"
        raise ConfigError("sweep.objective", "cv", f"scores a trial by one fold metric, its folds' mean; {needs} "
                          "needs sweep.objective=holdout")
    settings = SweepSettings(
        source=source, study_name=s["study_name"] or source.stem, overrides=tuple(s["overrides"]),
        space=SearchSpace.from_config(s["space"]), metrics=metrics, directions=directions,
        n_trials=s["n_trials"], objective=s["objective"], sampler=dict(s["sampler"]), pruner=dict(s["pruner"]),
        storage=s["storage"], dir=s["dir"], workers=s["workers"], max_failures=s["max_failures"],
        heartbeat_s=s["heartbeat_s"], report_only=s["report_only"], launcher=s["launcher"], wait=s["wait"],
        cluster=dict(s["cluster"]), constraints=constraints,
    )
    for name, fails, reason in SAMPLER_LIMITS:
        if settings.sampler["name"] == name and fails(settings):
            raise ConfigError("sweep.sampler.name", name, reason)
    return settings

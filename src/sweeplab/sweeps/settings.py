"""A sweep's settings: ``conf/sweep/default.yaml``, then ``sweeps/NAME.yaml``, then ``sweep.KEY=VALUE``.

The defaults file documents every key. A sweep file sets any of them; the
command line changes one value (``sweep.n_trials=8``) or one field of a
search-space entry (``sweep.space.optimizer.lr.high=0.5``). Anything that is
not a known key, or not an allowed value, is refused with one line naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from sweeplab.cli.common import CONFIG_DIR
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.sweeps.space import SearchSpace

SWEEPS_DIR = Path(CONFIG_DIR).parent / "sweeps"
DEFAULTS_FILE = Path(CONFIG_DIR) / "sweep" / "default.yaml"
PER_EPOCH_METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")  # what the training loop logs each epoch
DIRECTIONS = ("maximize", "minimize")
OBJECTIVES = ("holdout", "cv")
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "wilcoxon", "none")


@dataclass(frozen=True)
class SweepSettings:
    """The checked settings of one sweep (see ``conf/sweep/default.yaml`` for each key)."""

    source: Path
    study_name: str
    overrides: tuple[str, ...]
    space: SearchSpace
    metric: str
    direction: str
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


def find_sweep_file(name: str | None) -> Path:
    """``sweeps/NAME.yaml``, or ``NAME`` itself when it is the path of a YAML file."""
    available = ", ".join(sorted(path.stem for path in SWEEPS_DIR.glob("*.yaml"))) or "none"
    if not name:
        raise ConfigError("sweep", name, f"missing: name a sweep file in {SWEEPS_DIR} ({available}) or a .yaml path")
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml") and as_path.is_file():
        return as_path.resolve()
    candidate = SWEEPS_DIR / f"{name}.yaml"
    if "/" in name or not candidate.is_file():
        raise ConfigError("sweep", name, f"no such sweep: one of {available} (sweeps/*.yaml), or the path of a .yaml file")
    return candidate


def load_settings(source: Path, command_line: Sequence[str] = ()) -> SweepSettings:
    """Merge the defaults, the sweep file and ``sweep.KEY=VALUE`` arguments, and check the result."""
    merged = _read_yaml(DEFAULTS_FILE)
    from_file = _read_yaml(source)
    _refuse_unknown_keys(from_file, merged, where=str(source))
    merged.update(from_file)
    for argument in command_line:
        _apply_argument(merged, argument)
    return _checked(source, merged)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OSError, yaml.YAMLError, ValueError) as error:
        raise UserInputError(f"cannot read sweep file {path}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # noqa: BLE001 (OmegaConf's own errors: bad interpolations and the like)
        raise UserInputError(f"cannot read sweep file {path}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserInputError(f"sweep file {path} must hold a mapping of settings, not {type(loaded).__name__}")
    return loaded


def _refuse_unknown_keys(given: Mapping[str, Any], known: Mapping[str, Any], where: str) -> None:
    for key in given:
        if key not in known:
            raise ConfigError(f"sweep.{key}", given[key], f"unknown setting (in {where}); known: {', '.join(known)}")


def _apply_argument(settings: dict[str, Any], argument: str) -> None:
    """Apply ``sweep.KEY=VALUE`` (VALUE read as YAML) to the merged settings."""
    dotted, _, text = argument.partition("=")
    path = dotted.removeprefix("sweep.")
    value = _yaml_value(text)
    if path.startswith("space."):
        _set_space_field(settings.setdefault("space", {}), path.removeprefix("space."), value, dotted)
        return
    head, _, rest = path.partition(".")
    if head not in settings:
        raise ConfigError(dotted, value, f"unknown setting; known: {', '.join('sweep.' + key for key in settings)}")
    if not rest:
        settings[head] = value
    elif head in ("sampler", "pruner") and rest == "name" and value != settings[head].get("name"):
        # another sampler or pruner starts from its own defaults (a seed carries over)
        settings[head] = {"name": value, **({"seed": settings[head]["seed"]} if "seed" in settings[head] else {})}
    elif isinstance(settings[head], dict) and "." not in rest:
        settings[head][rest] = value
    else:
        raise ConfigError(dotted, value, f"sweep.{head} has no field {rest!r}")


def _yaml_value(text: str) -> Any:
    """A command-line value read as OmegaConf reads YAML (``1e-4`` is a float, ``[a, b]`` a list)."""
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([f"value={text}"]))["value"]
    except Exception:  # noqa: BLE001 (unparsable YAML: keep the text as typed)
        return text


def _set_space_field(space: dict[str, Any], path: str, value: Any, dotted: str) -> None:
    """``optimizer.lr.high`` -> ``space["optimizer.lr"]["high"]``: parameter keys hold dots themselves."""
    for key in sorted(space, key=len, reverse=True):
        if path.startswith(f"{key}.") and "." not in path[len(key) + 1:]:
            space[key][path[len(key) + 1:]] = value
            return
    raise ConfigError(dotted, value, f"names no field of a search-space entry; entries: {', '.join(space) or 'none'}")


def _checked(source: Path, s: dict[str, Any]) -> SweepSettings:
    _check_choice("metric", s["metric"], PER_EPOCH_METRICS)
    _check_choice("direction", s["direction"], DIRECTIONS)
    if s["direction"] == "maximize" and str(s["metric"]).endswith("loss"):
        raise ConfigError("sweep.direction", s["direction"], f"must be minimize for sweep.metric={s['metric']}")
    _check_choice("objective", s["objective"], OBJECTIVES)
    for key, minimum in (("n_trials", 1), ("workers", 1), ("max_failures", 1), ("heartbeat_s", 1)):
        value = s[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"sweep.{key}", value, f"must be an integer >= {minimum}")
    if not isinstance(s["overrides"], list) or not all(isinstance(o, str) for o in s["overrides"]):
        raise ConfigError("sweep.overrides", s["overrides"], "must be a list of training overrides such as [model=lenet]")
    for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if not isinstance(s[key], dict):
            raise ConfigError(f"sweep.{key}", s[key], f"must be a mapping with a name ({', '.join(allowed)}) and options")
        _check_choice(f"{key}.name", s[key].get("name"), allowed)
    seed = s["sampler"].get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError("sweep.sampler.seed", seed, "must be an integer, or null for an unseeded study")
    for key in ("storage", "dir", "study_name"):
        if s[key] is not None and (not isinstance(s[key], str) or not s[key]):
            raise ConfigError(f"sweep.{key}", s[key], "must be a non-empty string, or null")
    if not isinstance(s["report_only"], bool):
        raise ConfigError("sweep.report_only", s["report_only"], "must be true or false")
    return SweepSettings(
        source=source, study_name=s["study_name"] or source.stem, overrides=tuple(s["overrides"]),
        space=SearchSpace.from_config(s["space"]), metric=s["metric"], direction=s["direction"],
        n_trials=s["n_trials"], objective=s["objective"], sampler=dict(s["sampler"]), pruner=dict(s["pruner"]),
        storage=s["storage"], dir=s["dir"], workers=s["workers"], max_failures=s["max_failures"],
        heartbeat_s=s["heartbeat_s"], report_only=s["report_only"],
    )


def _check_choice(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"sweep.{key}", value, f"must be one of {', '.join(allowed)}")

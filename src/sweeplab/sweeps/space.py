"""The search space of a sweep, read from the ``space:`` node of a sweep file.

Each entry names a config key (``optimizer.lr``) or a config group (``optimizer``)
and how to sample it::

    optimizer:          {type: categorical, choices: [sgd, adam, adamw]}
    optimizer.lr:       {type: float, low: 1.0e-4, high: 0.1, log: true}
    optimizer.momentum: {type: float, low: 0.5, high: 0.99, when: {optimizer: sgd}}
    data.batch_size:    {type: int, low: 32, high: 256, step: 32}

``when`` makes a parameter conditional: it is sampled only in trials where the
named earlier parameters took one of the given values (a value or a list).
A trial's sample becomes training overrides (``optimizer.lr=0.0031``), so a
trial is exactly what ``python train.py <the same overrides>`` runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeplab.config.validate import is_int, is_number
from sweeplab.errors import ConfigError

if TYPE_CHECKING:
    import optuna

TYPES = ("float", "int", "categorical")
FIELDS = {
    "float": {"type", "low", "high", "log", "step", "when"},
    "int": {"type", "low", "high", "log", "step", "when"},
    "categorical": {"type", "choices", "when"},
}
_PLAIN_OVERRIDE_VALUE = re.compile(r"[\w\-./:+@]+")


@dataclass(frozen=True)
class Param:
    """One searched key: its distribution and the condition under which it is sampled."""

    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def is_active(self, sampled: Mapping[str, Any]) -> bool:
        return all(key in sampled and sampled[key] in values for key, values in self.when)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.key, list(self.choices))

    def extreme_values(self) -> tuple[Any, ...]:
        """The values that bound what this parameter can take: checked before a study starts."""
        return self.choices if self.type == "categorical" else (self.low, self.high)

    def condition_overrides(self) -> list[str]:
        """Overrides that make this parameter active (the first allowed value of each condition)."""
        return [override(key, values[0]) for key, values in self.when]


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, space: Mapping[str, Any], prefix: str = "sweep.space") -> SearchSpace:
        """Read and check a plain ``space:`` mapping; bad entries raise :class:`ConfigError` naming the key."""
        if not isinstance(space, Mapping) or not space:
            raise ConfigError(prefix, space, "must map config keys to {type: float|int|categorical, ...}")
        params: list[Param] = []
        for key, spec in space.items():
            params.append(_read_param(str(key), spec, f"{prefix}.{key}", known=params))
        return cls(tuple(params))

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    @property
    def keys(self) -> list[str]:
        return [param.key for param in self.params]

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every active parameter, in order, for ``trial``."""
        sampled: dict[str, Any] = {}
        for param in self.params:
            if param.is_active(sampled):
                sampled[param.key] = param.suggest(trial)
        return sampled


def overrides_for(sampled: Mapping[str, Any]) -> list[str]:
    """``{"optimizer.lr": 0.003}`` as ``["optimizer.lr=0.003"]``."""
    return [override(key, value) for key, value in sampled.items()]


def override(key: str, value: Any) -> str:
    """One Hydra override; floats keep every digit, so a trial runs exactly the sampled value."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and not _PLAIN_OVERRIDE_VALUE.fullmatch(value):
        text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        text = str(value)
    return f"{key}={text}"


def _read_param(key: str, spec: Any, where: str, known: list[Param]) -> Param:
    if not isinstance(spec, Mapping):
        raise ConfigError(where, spec, "must be a mapping such as {type: float, low: 0.0001, high: 0.1, log: true}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type", kind, f"must be one of {', '.join(TYPES)}")
    unknown = sorted(set(spec) - FIELDS[kind])
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", spec[unknown[0]], f"is not a field of a {kind} parameter; "
                          f"allowed: {', '.join(sorted(FIELDS[kind]))}")
    when = _read_condition(spec.get("when"), f"{where}.when", known)
    if kind == "categorical":
        return Param(key, kind, choices=_read_choices(spec.get("choices"), f"{where}.choices"), when=when)
    return _read_range(key, kind, spec, where, when)


def _read_choices(choices: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(choices, (list, tuple)):
        raise ConfigError(where, choices, "must be a list of at least one value")
    values = tuple(choices)
    if not values or not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
        raise ConfigError(where, choices, "must be a list of at least one value (numbers, strings, booleans, null)")
    if len(set(values)) != len(values):
        raise ConfigError(where, list(values), "must not repeat a value")
    return values


def _read_range(key: str, kind: str, spec: Mapping[str, Any], where: str, when) -> Param:
    is_valid = is_int if kind == "int" else is_number
    allowed = "an integer" if kind == "int" else "a number"
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
    for name, value in (("low", low), ("high", high)):
        if not is_valid(value) or not math.isfinite(value):
            raise ConfigError(f"{where}.{name}", value, f"must be {allowed}")
    if high < low:
        raise ConfigError(f"{where}.high", high, f"must be >= low ({low})")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log", log, "must be true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}.low", low, "must be > 0 with log: true")
    if step is not None and (not is_valid(step) or step <= 0):
        raise ConfigError(f"{where}.step", step, f"must be {allowed} > 0, or left out")
    if step is not None and log:
        raise ConfigError(f"{where}.step", step, "cannot be combined with log: true")
    return Param(key, kind, low=low, high=high, log=log, step=step, when=when)


def _read_condition(when: Any, where: str, known: list[Param]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(where, when, "must map earlier parameters to a value or a list of values")
    earlier = {param.key: param for param in known}
    conditions = []
    for key, values in when.items():
        if key not in earlier:
            raise ConfigError(f"{where}.{key}", values, f"must name a parameter listed before it ({', '.join(earlier) or 'none'})")
        allowed = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        conditions.append((str(key), allowed))
    return tuple(conditions)

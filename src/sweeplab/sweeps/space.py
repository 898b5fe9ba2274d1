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

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, cast

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweeplab.constraints import Boolean, Constraints, Interval, NoneValue, Satisfies, check_params, describe
from sweeplab.errors import ConfigError

if TYPE_CHECKING:
    import optuna

DISTRIBUTIONS: dict[str, type[BaseDistribution]] = {
    "float": FloatDistribution,
    "int": IntDistribution,
    "categorical": CategoricalDistribution,
}
DISTRIBUTION_TYPES = {cls: name for name, cls in DISTRIBUTIONS.items()}
TYPES = tuple(DISTRIBUTIONS)
FIELD_CONSTRAINTS: dict[
    str, dict[str, Constraints]
] = {  # beyond Optuna's own checks: what its distributions would take silently or obscurely
    "float": {
        "low": [Interval(Real, None, None)],
        "high": [Interval(Real, None, None)],
        "log": [Boolean()],
        "step": [NoneValue(), Interval(Real, 0, None, closed="neither")],
    },
    "int": {
        "low": [Interval(Integral, None, None)],
        "high": [Interval(Integral, None, None)],
        "log": [Boolean()],
        "step": [Interval(Integral, 1, None)],
    },
    "categorical": {
        "choices": [
            Satisfies(
                lambda v: (
                    isinstance(v, list)
                    and bool(v)
                    and all(c is None or isinstance(c, (bool, int, float, str)) for c in v)
                ),
                "a list of at least one value (numbers, strings, booleans, null)",
            )
        ]
    },
}
REQUIRED_FIELDS = ("low", "high", "choices")
FIELDS = {kind: {"type", "when", *fields} for kind, fields in FIELD_CONSTRAINTS.items()}
_PLAIN_OVERRIDE_VALUE = re.compile(r"[\w\-./:+@]+")


@dataclass(frozen=True)
class Param:
    """One searched key: its Optuna distribution and the condition under which it is sampled."""

    key: str
    distribution: BaseDistribution
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def type(self) -> str:
        return DISTRIBUTION_TYPES[type(self.distribution)]

    def is_active(self, sampled: Mapping[str, Any]) -> bool:
        return all(key in sampled and sampled[key] in values for key, values in self.when)

    def suggest(self, trial: optuna.Trial) -> Any:
        d = self.distribution
        if isinstance(d, FloatDistribution):
            return trial.suggest_float(self.key, d.low, d.high, log=d.log, step=d.step)
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.key, d.low, d.high, log=d.log, step=d.step)
        return trial.suggest_categorical(self.key, list(cast(CategoricalDistribution, d).choices))

    def extreme_values(self) -> tuple[Any, ...]:
        """The values that bound what this parameter can take: checked before a study starts."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return tuple(d.choices)
        numeric = cast("FloatDistribution | IntDistribution", d)
        return numeric.low, numeric.high

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
        raise ConfigError(
            f"{where}.{unknown[0]}",
            spec[unknown[0]],
            f"is not a field of a {kind} parameter; allowed: {', '.join(sorted(FIELDS[kind]))}",
        )
    when = _read_condition(spec.get("when"), f"{where}.when", known)
    arguments = {name: spec[name] for name in FIELDS[kind] - {"type", "when"} if name in spec}
    for name in FIELD_CONSTRAINTS[kind]:
        if name not in arguments and name in REQUIRED_FIELDS:
            raise ConfigError(f"{where}.{name}", None, f"missing; must be {describe(FIELD_CONSTRAINTS[kind][name])}")
    check_params(arguments, FIELD_CONSTRAINTS[kind], prefix=f"{where}.")
    try:
        distribution = DISTRIBUTIONS[kind](**arguments)
    except (TypeError, ValueError) as error:  # Optuna's own checks: low > high, log with low <= 0, ...
        raise ConfigError(where, {k: v for k, v in spec.items() if k != "when"}, str(error).splitlines()[0]) from None
    return Param(key, distribution, when)


def _read_condition(when: Any, where: str, known: list[Param]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(where, when, "must map earlier parameters to a value or a list of values")
    earlier = {param.key: param for param in known}
    conditions = []
    for key, values in when.items():
        if key not in earlier:
            raise ConfigError(
                f"{where}.{key}", values, f"must name a parameter listed before it ({', '.join(earlier) or 'none'})"
            )
        allowed = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        conditions.append((str(key), allowed))
    return tuple(conditions)

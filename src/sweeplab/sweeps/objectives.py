"""What a trial is scored by: one objective, or several (a trade-off study), and its constraints.

``sweep.metric=val_acc`` is a single-objective study (the best epoch's value, as always);
``sweep.metric=[val_acc,num_params] sweep.direction=[maximize,minimize]`` a
multi-objective one, whose result is the Pareto front: the trials no other trial dominates
(is as good on every objective and better on one). An objective is a per-epoch metric (its best epoch), ``num_params``
or ``epoch_s`` (the mean training epoch time). ``sweep.constraints=["num_params<=100000"]``
marks the trials that miss a bound infeasible: Optuna's ``best_trial`` and ``best_trials``
choose among the feasible ones, and TPE, GP and NSGA-II steer away from the others.

Each rule of these settings is said once, with the words of its refusal (as
:mod:`sweeplab.constraints`): a bad objective list or constraint is one line, exit 2.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sweeplab.constraints import Options, Satisfies, check_value, describe
from sweeplab.errors import ConfigError
from sweeplab.metrics import EPOCH_S, MAXIMIZE, METRICS, MINIMIZE, NUM_PARAMS, PER_EPOCH, metric

DIRECTIONS = (MAXIMIZE, MINIMIZE)
# what a trade-off study can trade: a per-epoch metric (its best epoch), the model's size, the time an epoch takes
OBJECTIVE_METRICS = (*PER_EPOCH, NUM_PARAMS.name, EPOCH_S.name)
CONSTRAINT_METRICS = tuple(METRICS)  # anything a finished trial reports
OPERATORS = ("<=", ">=", "<", ">")
CONSTRAINT_EXAMPLE = "num_params<=100000"


def _is_list_of(v: Any, at_least: int) -> bool:
    return isinstance(v, list) and len(v) >= at_least and all(isinstance(item, str) for item in v)


# the settings' own rules (the type of each value; its items are checked below, one by one)
METRIC_RULE = [
    Options(PER_EPOCH),
    Satisfies(lambda v: _is_list_of(v, 2), "a list of 2 or more objectives (a trade-off study)"),
]
DIRECTION_RULE = [
    Options(DIRECTIONS),
    Satisfies(lambda v: _is_list_of(v, 1), "a list of them, one per objective of sweep.metric"),
]
CONSTRAINTS_RULE = [
    Satisfies(
        lambda v: isinstance(v, str) or _is_list_of(v, 0),
        f'a list of constraints NAME OP NUMBER, such as ["{CONSTRAINT_EXAMPLE}"]',
    )
]
OBJECTIVE_ITEM = [Options(OBJECTIVE_METRICS)]
DIRECTION_ITEM = [Options(DIRECTIONS)]


def read_objectives(metrics: Any, directions: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``sweep.metric`` and ``sweep.direction`` as two tuples of the same length (one each for a single objective).

    Every direction must be the metric's own (:mod:`sweeplab.metrics`): a study that minimizes
    accuracy is a typo, not a wish.
    """
    check_value("sweep.metric", metrics, METRIC_RULE)
    check_value("sweep.direction", directions, DIRECTION_RULE)
    if isinstance(metrics, str):
        if not isinstance(directions, str):
            raise ConfigError(
                "sweep.direction",
                directions,
                f"must be {describe(DIRECTION_ITEM)}: sweep.metric={metrics} "
                "is one objective (a trade-off study lists several: sweep.metric=[val_acc,num_params])",
            )
        names, ways = (metrics,), (directions,)
    else:
        for index, name in enumerate(metrics):
            check_value(f"sweep.metric[{index}]", name, OBJECTIVE_ITEM)
        twice = [name for name, count in Counter(metrics).items() if count > 1]
        if twice:
            raise ConfigError("sweep.metric", metrics, f"names {twice[0]} twice: each objective once")
        own = [metric(name).direction for name in metrics]
        if not isinstance(directions, list) or len(directions) != len(metrics):
            raise ConfigError(
                "sweep.direction",
                directions,
                f"must be a list of {len(metrics)} directions, one per "
                f"objective of sweep.metric=[{','.join(metrics)}]: [{','.join(own)}]",
            )
        for index, way in enumerate(directions):
            check_value(f"sweep.direction[{index}]", way, DIRECTION_ITEM)
        names, ways = tuple(metrics), tuple(directions)
    for index, (name, way) in enumerate(zip(names, ways, strict=True)):
        if metric(name).direction != way:
            key, of = (
                ("sweep.direction", "sweep.metric")
                if len(names) == 1
                else (f"sweep.direction[{index}]", f"sweep.metric[{index}]")
            )
            raise ConfigError(key, way, f"must be {metric(name).direction} for {of}={name}")
    return names, ways


def objectives_text(metrics: Sequence[str], directions: Sequence[str]) -> str:
    """``maximize `val_acc``` or ``maximize `val_acc`, minimize `num_params```, for reports."""
    return ", ".join(f"{way} `{name}`" for name, way in zip(metrics, directions, strict=True))


# --- values of a finished run ----------------------------------------------------------------
def best_epoch_value(history: list[dict[str, Any]], name: str, direction: str) -> float | None:
    """The best per-epoch value of ``name`` (highest when maximizing), or None if never logged."""
    values = [row[name] for row in history if row.get(name) is not None]
    if not values:
        return None
    return max(values) if direction == MAXIMIZE else min(values)


def run_metric(results: Any, name: str) -> float | None:
    """Metric ``name`` of a finished run (:class:`~sweeplab.runs.results.RunResults`), None when it has none:
    a per-epoch metric's best epoch, ``epoch_s`` the mean of the epochs' times, any other results.json's field."""
    if metric(name).per_epoch:
        return best_epoch_value(results.history, name, metric(name).direction)
    if name == EPOCH_S.name:
        times = [row["epoch_s"] for row in results.history if row.get("epoch_s") is not None]
        return round(statistics.fmean(times), 4) if times else None
    return getattr(results, name)


# --- constraints ---------------------------------------------------------------------------
_CONSTRAINT = re.compile(r"\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*(\S+)\s*")


@dataclass(frozen=True)
class TrialConstraint:
    """``NAME OP NUMBER``: a bound on a metric a finished trial reports (``num_params<=100000``)."""

    metric: str
    op: str
    bound: float
    text: str  # as written, without spaces: the constraint's name in the study (Trial.set_constraint)

    def holds(self, value: float) -> bool:
        return self.violation(value) <= 0

    def violation(self, value: float) -> float:
        """Optuna's constraint value: 0 or less when ``value`` satisfies the bound, else by how much it misses
        (in the metric's own unit; a value on a strict bound misses by the smallest amount)."""
        gap = value - self.bound if self.op in ("<=", "<") else self.bound - value
        if gap == 0 and self.op in ("<", ">"):
            return math.ulp(abs(self.bound)) if self.bound else math.ulp(0.0)
        return gap


def read_constraints(value: Any) -> tuple[TrialConstraint, ...]:
    """``sweep.constraints`` (a list of ``NAME OP NUMBER`` strings, or one) as :class:`TrialConstraint` objects."""
    check_value("sweep.constraints", value, CONSTRAINTS_RULE)
    texts = [value] if isinstance(value, str) else list(value)
    constraints = tuple(parse_constraint(text, f"sweep.constraints[{index}]") for index, text in enumerate(texts))
    twice = [text for text, count in Counter(c.text for c in constraints).items() if count > 1]
    if twice:
        raise ConfigError("sweep.constraints", texts, f"lists {twice[0]} twice: each constraint once")
    return constraints


def parse_constraint(text: str, key: str) -> TrialConstraint:
    match = _CONSTRAINT.fullmatch(text)
    number = _number(match.group(3)) if match else None
    if match is None or number is None:
        raise ConfigError(
            key, text, f"must be NAME OP NUMBER with OP one of {', '.join(OPERATORS)}, such as {CONSTRAINT_EXAMPLE}"
        )
    name, op = match.group(1), match.group(2)
    if name not in CONSTRAINT_METRICS:
        raise ConfigError(key, text, f"{name} is no metric a trial reports; one of {', '.join(CONSTRAINT_METRICS)}")
    return TrialConstraint(name, op, number, f"{name}{op}{match.group(3)}")


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def constraint_values(results: Any, constraints: Sequence[TrialConstraint]) -> dict[TrialConstraint, float | None]:
    """Each constraint's metric for a finished run (None where the run reports none)."""
    return {constraint: run_metric(results, constraint.metric) for constraint in constraints}

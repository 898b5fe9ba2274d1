"""What a stored trial is: finished, taking a place, surplus, feasible, the best, on the front.

The one home of these words: the workers (how many places are left), the objective
(whether a trial may still train), the report and the command's summary read them here.

* **finished**: complete or pruned; ``sweep.n_trials`` counts finished trials.
* **taking a place**: finished or running (Optuna's ``MaxTrialsCallback`` counting those
  states): a worker asks for a trial only while fewer than ``n_trials`` take places.
* **surplus**: a trial started after the places were all taken, never trained. Workers ask
  for trials under the storage's lock (:mod:`sweeplab.sweeps.workers`), so none is created
  on SQLite, journal and PostgreSQL storages; elsewhere two workers may still ask in the
  same instant, and the later one stands back (its user attribute ``surplus``).
* **feasible**: met every ``sweep.constraints`` bound (Optuna's ``Trial.set_constraint``
  values all <= 0); an unconstrained trial always is.
* **best** / **front**: Optuna's ``best_trial`` / ``best_trials`` (complete and feasible).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TAKEN = (*FINISHED, TrialState.RUNNING)  # trials that fill one of the n_trials places
SURPLUS_ATTR = "surplus"


def is_surplus(trial: FrozenTrial) -> bool:
    """A trial that stood back untrained because the places were taken (see the module's text)."""
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get(SURPLUS_ATTR))


def is_feasible(trial: Any) -> bool:
    """Whether a stored trial met its constraints (a trial of an unconstrained study always does)."""
    return all(value <= 0 for value in trial.constraints.values())


def missed_constraints(trial: Any) -> list[str]:
    """The names (``num_params<=100000``) of the constraints a stored trial missed."""
    return [name for name, value in trial.constraints.items() if value > 0]


def count_in(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def places_left(study: optuna.Study, n_trials: int) -> int:
    """How many more trials may start: ``n_trials`` minus finished and running ones."""
    return max(0, n_trials - count_in(study, TAKEN))


def taken_before(study: optuna.Study, number: int) -> int:
    """How many trials numbered before ``number`` are finished or running."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=TAKEN) if t.number < number)


@dataclass(frozen=True)
class StudyCounts:
    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int
    surplus: int

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def count_trials(trials: Sequence[FrozenTrial]) -> StudyCounts:
    """The trials in each state; surplus trials apart from the failed ones."""

    def n(state: TrialState) -> int:
        return sum(1 for t in trials if t.state == state and not is_surplus(t))

    return StudyCounts(
        n(TrialState.COMPLETE),
        n(TrialState.PRUNED),
        n(TrialState.FAIL),
        n(TrialState.RUNNING),
        n(TrialState.WAITING),
        sum(1 for t in trials if is_surplus(t)),
    )


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial of a single-objective study (a feasible one, under constraints), or None."""
    try:
        return study.best_trial
    except ValueError:  # no complete (feasible) trial yet
        return None


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """A trade-off study's Pareto front (Optuna's ``best_trials``, feasible ones only), best first objective first."""
    front = study.best_trials
    first_maximized = study.directions[0].name == "MAXIMIZE"
    return sorted(front, key=lambda t: (-t.values[0] if first_maximized else t.values[0], t.number))


def ranked(trials: Sequence[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """Complete trials, feasible ones first, then best first (by the first objective of a trade-off study)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    sign = -1 if direction == "maximize" else 1
    return sorted(complete, key=lambda t: (not is_feasible(t), sign * t.values[0]))

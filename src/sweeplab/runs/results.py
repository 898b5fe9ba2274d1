"""``results.json``: the machine-readable record of a run, as one typed record.

:func:`sweeplab.runs.fit.fit` writes it at the end of every run that started, with
its ``status``; readers (``compare.py``, the multirun summary, sweeps, CV) read it
back with :meth:`RunResults.read`, which refuses a damaged file in one line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.constraints import is_number
from sweeplab.errors import INTERRUPTED_EXIT_CODE, UserInputError
from sweeplab.files import write_json_atomic
from sweeplab.metrics import VAL_LOSS
from sweeplab.safe_read import UnreadableFile, read_json_file

COMPLETED, DIVERGED, FAILED, INTERRUPTED, PRUNED = "completed", "diverged", "failed", "interrupted", "pruned"
TIMED_OUT = "timed_out"  # a sweep's trial stopped at sweep.trial_timeout_min (sweeplab.training.time_limit)
STATUSES = (COMPLETED, DIVERGED, FAILED, INTERRUPTED, PRUNED, TIMED_OUT)
# what train.py exits with; an interrupted run exits with 128 + its stop signal's number
# (sweeplab.errors.stop_exit_code: 130 for SIGINT, 143 for SIGTERM), INTERRUPTED_EXIT_CODE when it is not known
EXIT_CODES = {COMPLETED: 0, FAILED: 1, DIVERGED: 3, INTERRUPTED: INTERRUPTED_EXIT_CODE}


class UnreadableResults(UserInputError):
    """A results file that is missing, truncated or not a record of a run."""


@dataclass
class RunResults:
    """What a run reports; ``None`` where it has no value (no test set evaluated, no epoch finished)."""

    status: str
    error: str | None = None
    dataset: str | None = None
    model: str | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    best_val_acc: float | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None  # the epoch of the best checkpoint (lowest val_loss), from 1
    val_acc_at_best_epoch: float | None = None
    epochs_run: int = 0
    stopped_early: bool = False
    duration_s: float | None = None
    num_params: int | None = None
    seed: int | None = None
    git_commit: str | None = None
    job: dict[str, Any] | None = None  # the cluster job that ran it (sweeplab.cluster.ClusterJob), None outside one
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    classes: list[str] = field(default_factory=list)
    test_confusion: list[list[int]] | None = None
    val_confusion: list[list[int]] | None = None  # of the best checkpoint
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch
    hparams: dict[str, Any] = field(default_factory=dict)  # the flat config (sweeplab.runs.hparams)
    config_changes: list[dict[str, Any]] = field(default_factory=list)  # allowed on resume: epoch, {key: [old, new]}
    stop_signal: str | None = None  # an interrupted run: the signal that stopped it ("SIGTERM"), when known
    resumed_from_epoch: int | None = (
        None  # a resumed run (resume=true, a retried sweep trial): epochs its checkpoint held
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "results") -> RunResults:
        """A record from parsed JSON; a value of the wrong kind is refused naming the key."""
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise UnreadableResults(f"{source} is not a run's results (no status)")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for key, value in values.items():
            expected = NUMERIC_FIELDS.get(key)
            if expected is not None and value is not None and not is_number(value):
                raise UnreadableResults(f"{source}: {key}={value!r} is not a number")
        for key in ("history", "classes", "config_changes"):
            if values.get(key) is None:
                values.pop(key, None)
        if not isinstance(values.get("hparams", {}), dict):
            raise UnreadableResults(f"{source}: hparams is not a mapping")
        if not isinstance(values.get("history", []), list):
            raise UnreadableResults(f"{source}: history is not a list")
        return cls(**values)

    @classmethod
    def read(cls, path: str | Path) -> RunResults:
        """The record in ``path``, or :class:`UnreadableResults` saying what is wrong with the file."""
        try:
            data = read_json_file(path)
        except UnreadableFile as error:  # missing, damaged, too large or too deeply nested: the message names it
            raise UnreadableResults(str(error)) from None
        return cls.from_dict(data, source=str(path))


NUMERIC_FIELDS = {
    f.name: f.type for f in dataclasses.fields(RunResults) if f.type in ("float | None", "int | None", "int")
}


def best_epoch_row(
    history: list[dict[str, Any]], monitor: str = VAL_LOSS.name, mode: str = "min"
) -> dict[str, Any] | None:
    """The epoch whose checkpoint is the run's best: the best ``monitor`` (the checkpoint callback's)."""
    scored = [row for row in history if row.get(monitor) is not None]
    if not scored:
        return None
    return (max if mode == "max" else min)(scored, key=lambda row: row[monitor])

"""Several training batches per pass of Lightning's batch loop (``steps_per_execution``).

Every training batch costs Lightning's loop about half a millisecond of Python on a
CPU before any model code runs: fetching, device transfer, a dozen module and
callback hooks, progress tracking. A small model's whole step takes ten. Handing
the loop a *group* of consecutive batches, on which the training step runs one
optimizer step each, pays that once per group (Keras calls the same knob
``steps_per_execution``). Samples, their order and the weights trained are the same
for any group size; only what counts Lightning's batches sees groups.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

AUTO_STEPS_PER_EXECUTION = 8  # past ~8 the loop's share is ~1% of a small model's step (benchmarks/throughput.py)
PER_BATCH_HOOKS = ("on_train_batch_start", "on_train_batch_end")


def batches_in(item: Any) -> list:
    """The training batches of one loader item: a group is a list, a plain batch a tuple."""
    return item if isinstance(item, list) else [item]


def reads_every_batch(callback: Callback) -> bool:
    """Whether a callback acts on individual training batches, and so would see groups.

    Progress bars, early stopping and epoch-end checkpoints do not; a callback that
    declares ``handles_step_groups = True`` reads groups itself.
    """
    if isinstance(callback, (ProgressBar, EarlyStopping)) or getattr(callback, "handles_step_groups", False):
        return False
    if isinstance(callback, ModelCheckpoint):  # only its step- or time-based saving looks at batches
        return bool(getattr(callback, "_every_n_train_steps", 1) or getattr(callback, "_train_time_interval", None))
    return any(is_overridden(hook, callback, Callback) for hook in PER_BATCH_HOOKS)


def counts_batches(trainer: pl.Trainer) -> str | None:
    """What in this trainer counts individual training batches (None: nothing does)."""
    if not isinstance(trainer.strategy, SingleDeviceStrategy):
        return "data-parallel training"  # the gradient sync is per step anyway: grouping saves little there
    for name in ("limit_train_batches", "val_check_interval"):
        if isinstance(getattr(trainer, name, None), int):
            return f"trainer.{name}"
    if trainer.fast_dev_run:
        return "trainer.fast_dev_run"
    listeners = [type(cb).__name__ for cb in trainer.callbacks if reads_every_batch(cb)]
    return f"callback {listeners[0]}" if listeners else None


def resolve_steps_per_execution(setting: int | str, trainer: pl.Trainer | None) -> int:
    """The group size for ``setting``: an integer as given; ``"auto"`` is
    :data:`AUTO_STEPS_PER_EXECUTION` unless something counts individual batches
    (:func:`counts_batches`), then 1."""
    if setting != "auto":
        return int(setting)
    if trainer is None or counts_batches(trainer) is not None:
        return 1
    return AUTO_STEPS_PER_EXECUTION

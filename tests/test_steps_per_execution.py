"""Groups of batches per pass of Lightning's loop (steps_per_execution): same training, fewer loop passes."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import FAKE_FAST, compose_config
from sweeplab.data.grouping import AUTO_STEPS_PER_EXECUTION, resolve_steps_per_execution
from sweeplab.data.loader import TensorBatches
from sweeplab.runs.build import build_trainer
from sweeplab.runs.fit import fit

# FAKE_FAST: 256 samples, 10% for validation, batch 32: 8 training batches per epoch, the last of 6
BATCHES_PER_EPOCH = 8


def test_grouped_loader_yields_the_same_batches_in_groups():
    images, labels = torch.randn(300, 1, 4, 4), torch.arange(300)
    single = TensorBatches(images, labels, torch.arange(300), 32, shuffle=True, seed=5)
    grouped = TensorBatches(images, labels, torch.arange(300), 32, shuffle=True, seed=5, group=3)
    groups = list(grouped)
    assert [len(group) for group in groups] == [3, 3, 3, 1]
    assert len(grouped) == 4 and grouped.num_batches == len(single) == 10
    assert [grouped.batches_in_items(items) for items in (1, 3, 4)] == [3, 9, 10]
    flat = [batch for group in groups for batch in group]
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[0], b[0]) for a, b in zip(flat, single, strict=True))


class GroupProbe(Callback):
    """Records the group size the run trained with, its steps and the one-cycle plan."""

    def on_train_end(self, trainer, pl_module) -> None:
        self.group = trainer.train_dataloader.group
        self.global_step = trainer.global_step
        configs = trainer.lr_scheduler_configs
        self.scheduler_total = getattr(configs[0].scheduler, "total_steps", None) if configs else None
        self.scheduler_steps = configs[0].scheduler.last_epoch if configs else None
        self.weights = torch.nn.utils.parameters_to_vector(pl_module.model.parameters()).detach().clone()


def _fit(tmp_path, overrides) -> tuple[dict, GroupProbe]:
    probe = GroupProbe()
    results = fit(compose_config(FAKE_FAST + ["model=mlp"] + overrides), tmp_path, callbacks=[probe], evaluate_test=False)
    return results, probe


def test_the_group_size_changes_nothing_but_the_loop_passes(tmp_path):
    results_1, one = _fit(tmp_path / "one", ["steps_per_execution=1"])
    results_3, three = _fit(tmp_path / "three", ["steps_per_execution=3"])
    _, auto = _fit(tmp_path / "auto", [])
    assert (one.group, three.group, auto.group) == (1, 3, AUTO_STEPS_PER_EXECUTION)
    assert one.global_step == three.global_step == auto.global_step == 2 * BATCHES_PER_EPOCH
    assert torch.equal(one.weights, three.weights) and torch.equal(one.weights, auto.weights)
    assert [row["train_loss"] for row in results_1["history"]] == [row["train_loss"] for row in results_3["history"]]


@pytest.mark.parametrize("overrides", [[], ["trainer.limit_train_batches=0.5"]])
def test_one_cycle_plans_exactly_the_steps_a_grouped_run_takes(tmp_path, overrides):
    """One-cycle needs the run's step count up front; Lightning counts loader items (groups)."""
    _, probe = _fit(tmp_path, ["scheduler=onecycle", "steps_per_execution=3"] + overrides)
    # limit 0.5 keeps int(3 groups * 0.5) = 1 group, 3 steps, per epoch
    expected = 2 * (BATCHES_PER_EPOCH if not overrides else 3)
    assert probe.group == 3
    assert probe.global_step == probe.scheduler_total == probe.scheduler_steps == expected


def test_max_steps_stops_inside_a_group(tmp_path):
    # early stopping wants the val_loss of an epoch that max_steps cuts short (as with any group size)
    _, probe = _fit(tmp_path, ["steps_per_execution=3", "+trainer.max_steps=5", "~callbacks.early_stopping"])
    assert probe.global_step == 5


class PerBatchListener(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pass


class GroupReader(PerBatchListener):
    handles_step_groups = True


@pytest.mark.parametrize(("overrides", "callbacks", "expected"), [
    ([], [], AUTO_STEPS_PER_EXECUTION),
    (["trainer.limit_train_batches=3"], [], 1),  # counts single batches
    (["trainer.limit_train_batches=0.5"], [], AUTO_STEPS_PER_EXECUTION),  # a fraction of the epoch either way
    ([], [PerBatchListener()], 1),
    ([], [GroupReader()], AUTO_STEPS_PER_EXECUTION),
    (["+callbacks.checkpoint.every_n_train_steps=10"], [], 1),
])
def test_auto_groups_unless_something_counts_single_batches(tmp_path, overrides, callbacks, expected):
    cfg = compose_config(FAKE_FAST + overrides)
    trainer = build_trainer(cfg, tmp_path, callbacks)
    assert resolve_steps_per_execution("auto", trainer) == expected
    assert resolve_steps_per_execution(5, trainer) == 5  # an explicit size is kept


class BarProbe(Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        bar = trainer.progress_bar_callback.train_progress_bar
        self.seen = (bar.n, bar.total)


def test_the_progress_bar_counts_steps_not_groups(tmp_path):
    probe = BarProbe()
    fit(compose_config(FAKE_FAST + ["model=mlp", "progress_bar=true", "steps_per_execution=3", "trainer.max_epochs=1"]),
        tmp_path, callbacks=[probe], evaluate_test=False)
    assert probe.seen == (BATCHES_PER_EPOCH, BATCHES_PER_EPOCH)

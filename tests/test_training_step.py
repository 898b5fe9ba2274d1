"""The training step drives optimization itself: clipping, hooks, memory layout."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import FAKE_FAST, compose_config
from sweeplab.runs.build import build_datamodule, build_module, build_trainer
from sweeplab.runs.fit import fit


def _steps_taken(results: dict) -> int:
    """Optimizer steps of a FAKE_FAST run (batch 32, last batch kept)."""
    return results["epochs_run"] * -(-results["train_size"] // 32)


def _one_step(tmp_path, overrides):
    """Weights before and after one SGD step of the config, on fake data."""
    cfg = compose_config(FAKE_FAST + ["model=mlp", "optimizer=sgd", "optimizer.lr=1.0", "optimizer.momentum=0",
                                      "scheduler=none", "+trainer.max_steps=1", "~callbacks.early_stopping"] + overrides)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    pl.seed_everything(cfg.seed)
    module = build_module(cfg, datamodule)
    before = torch.nn.utils.parameters_to_vector(module.model.parameters()).detach().clone()
    trainer = build_trainer(cfg, tmp_path, [])
    trainer.fit(module, datamodule=datamodule)
    after = torch.nn.utils.parameters_to_vector(module.model.parameters()).detach()
    return trainer, before, after


def test_gradient_clip_val_bounds_the_step(tmp_path):
    trainer, before, after = _one_step(tmp_path / "clipped", ["gradient_clip_val=0.001"])
    assert trainer.global_step == 1
    # SGD with lr 1 moves the weights by exactly the clipped gradient
    assert (after - before).norm().item() == pytest.approx(0.001, rel=1e-3)
    _, before, after = _one_step(tmp_path / "free", [])
    assert (after - before).norm().item() > 0.01


class StepHookCounter(Callback):
    def __init__(self) -> None:
        self.before = self.after = self.optimizer_steps = 0

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.before += 1

    def on_after_backward(self, trainer, pl_module) -> None:
        self.after += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.optimizer_steps += 1


def test_step_counting_holds_on_the_direct_path(tmp_path):
    """Without listeners the step calls loss.backward() and the bare optimizer; the
    trainer still counts every step (checkpoints, max_steps and logging rely on it)."""
    results = fit(compose_config(FAKE_FAST + ["model=mlp"]), tmp_path)
    steps = _steps_taken(results)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == steps and last["epoch"] == results["epochs_run"] - 1


def test_step_hooks_of_callbacks_still_run(tmp_path):
    """A callback that overrides a backward or optimizer hook sends the step through
    Lightning's wrappers, hooks and all."""
    counter = StepHookCounter()
    results = fit(compose_config(FAKE_FAST + ["model=mlp"]), tmp_path, callbacks=[counter])
    steps = _steps_taken(results)
    assert counter.before == counter.after == counter.optimizer_steps == steps


class LayoutProbe(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.memory_format = pl_module.memory_format
        conv_weights = [p for p in pl_module.model.parameters() if p.dim() == 4]
        self.weight_is_channels_last = bool(conv_weights) and all(
            p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights
        )


@pytest.mark.parametrize(("overrides", "expected"), [
    (["model=lenet"], torch.channels_last),
    (["model=lenet", "model.channels_last=false"], torch.contiguous_format),
    (["model=mlp"], torch.contiguous_format),
])
def test_channels_last_auto_picks_convolutional_models_on_cpu(tmp_path, overrides, expected):
    probe = LayoutProbe()
    fit(compose_config(FAKE_FAST + ["data.channels=1", "data.size=28", "trainer.max_epochs=1"] + overrides),
        tmp_path, callbacks=[probe], evaluate_test=False)
    assert probe.memory_format == expected
    assert probe.weight_is_channels_last == (expected == torch.channels_last)

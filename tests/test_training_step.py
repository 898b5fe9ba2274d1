"""The training step is Lightning's automatic optimization: clipping, accumulation, memory layout."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import FAKE_FAST, compose_config, run_cli
from sweeplab.runs.build import build_datamodule, build_module, build_trainer
from sweeplab.runs.fit import fit

ONE_SGD_STEP = [
    "model=mlp",
    "optimizer=sgd",
    "optimizer.lr=1.0",
    "optimizer.momentum=0",
    "scheduler=none",
    "~callbacks.early_stopping",
    "data.augment.translate=0",
]


def _weights_after(tmp_path, overrides: list[str]) -> tuple[torch.Tensor, torch.Tensor, pl.Trainer]:
    """The MLP's weights before and after training the config on fake data."""
    cfg = compose_config(FAKE_FAST + ONE_SGD_STEP + overrides)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    pl.seed_everything(cfg.seed)
    module = build_module(cfg, datamodule)
    before = torch.nn.utils.parameters_to_vector(module.model.parameters()).detach().clone()
    trainer = build_trainer(cfg, tmp_path, [])
    trainer.fit(module, datamodule=datamodule)
    return before, torch.nn.utils.parameters_to_vector(module.model.parameters()).detach(), trainer


def test_gradient_clip_val_bounds_the_gradient_norm(tmp_path):
    before, after, trainer = _weights_after(
        tmp_path / "clipped", ["+trainer.max_steps=1", "trainer.gradient_clip_val=0.001"]
    )
    assert trainer.global_step == 1
    # SGD with lr 1 moves the weights by exactly the clipped gradient
    assert (after - before).norm().item() == pytest.approx(0.001, rel=1e-3)
    before, after, _ = _weights_after(tmp_path / "free", ["+trainer.max_steps=1"])
    assert (after - before).norm().item() > 0.01


def test_accumulating_two_batches_is_one_step_on_the_doubled_batch(tmp_path):
    _, accumulated, trainer = _weights_after(
        tmp_path / "acc", ["+trainer.max_steps=1", "data.batch_size=16", "trainer.accumulate_grad_batches=2"]
    )
    assert trainer.global_step == 1  # two batches, one optimizer step
    before, doubled, _ = _weights_after(tmp_path / "doubled", ["+trainer.max_steps=1", "data.batch_size=32"])
    assert (doubled - before).norm().item() > 0.01
    assert torch.allclose(accumulated, doubled, atol=1e-6)


def test_the_command_line_takes_lightnings_gradient_options(tmp_path):
    done = run_cli(
        "train.py",
        *FAKE_FAST,
        "model=mlp",
        "trainer.max_epochs=1",
        "trainer.accumulate_grad_batches=2",
        "trainer.gradient_clip_val=1.0",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    hparams = json.loads((tmp_path / "run" / "results.json").read_text())["hparams"]
    assert hparams["trainer.accumulate_grad_batches"] == 2 and hparams["trainer.gradient_clip_val"] == 1.0


def test_every_optimizer_step_is_counted(tmp_path):
    results = fit(compose_config(FAKE_FAST + ["model=mlp"]), tmp_path)
    steps = results.epochs_run * -(-results.train_size // 32)  # batch 32, last batch kept
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == steps and last["epoch"] == results.epochs_run - 1


class LayoutProbe(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.memory_format = pl_module.memory_format
        conv_weights = [p for p in pl_module.model.parameters() if p.dim() == 4]
        self.weight_is_channels_last = bool(conv_weights) and all(
            p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights
        )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model=lenet"], torch.channels_last),
        (["model=lenet", "model.channels_last=false"], torch.contiguous_format),
        (["model=mlp"], torch.contiguous_format),
    ],
)
def test_channels_last_auto_picks_convolutional_models_on_cpu(tmp_path, overrides, expected):
    probe = LayoutProbe()
    fit(
        compose_config(FAKE_FAST + ["data.channels=1", "data.size=28", "trainer.max_epochs=1"] + overrides),
        tmp_path,
        callbacks=[probe],
        evaluate_test=False,
    )
    assert probe.memory_format == expected
    assert probe.weight_is_channels_last == (expected == torch.channels_last)


class OptimizerProbe(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.optimizer = trainer.optimizers[0]


@pytest.mark.parametrize(
    ("overrides", "optimizer", "fused"),
    [
        (["optimizer=adamw"], "AdamW", True),
        (["optimizer=sgd"], "SGD", True),
        (["optimizer=adamw", "optimizer.fused=false"], "AdamW", None),  # torch's default kernel
        (["optimizer=adam", "optimizer._target_=torch.optim.Adamax"], "Adamax", None),  # auto: Adamax has none
    ],
)
def test_fused_auto_steps_with_torchs_fused_kernel_where_the_optimizer_has_one(tmp_path, overrides, optimizer, fused):
    probe = OptimizerProbe()
    fit(
        compose_config(FAKE_FAST + ["model=mlp", "trainer.max_epochs=1"] + overrides),
        tmp_path,
        callbacks=[probe],
        evaluate_test=False,
    )
    assert type(probe.optimizer).__name__ == optimizer
    assert probe.optimizer.defaults.get("fused") == fused


def test_the_fused_kernel_trains_the_same_weights_as_torchs_default(tmp_path):
    """The kernel is how the step is computed, not what it computes: a few AdamW steps land on the same weights."""
    weights = {}
    for fused in ("auto", "false"):
        cfg = compose_config(
            FAKE_FAST
            + [
                "model=mlp",
                "optimizer=adamw",
                "scheduler=none",
                "+trainer.max_steps=5",
                "~callbacks.early_stopping",
                f"optimizer.fused={fused}",
            ]
        )
        datamodule = build_datamodule(cfg)
        datamodule.prepare_data()
        datamodule.setup("fit")
        pl.seed_everything(cfg.seed)
        module = build_module(cfg, datamodule)
        weights["start"] = torch.nn.utils.parameters_to_vector(module.model.parameters()).detach().clone()
        build_trainer(cfg, tmp_path / fused, []).fit(module, datamodule=datamodule)
        weights[fused] = torch.nn.utils.parameters_to_vector(module.model.parameters()).detach()
    assert module.trainer.global_step == 5
    assert (weights["auto"] - weights["start"]).abs().max() > 1e-3, "the weights must have trained"
    assert torch.allclose(weights["auto"], weights["false"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("library_loads, expected", [(False, "0"), (True, "1")])
def test_the_nvml_probe_lightning_asks_for_is_dropped_only_where_no_driver_could_answer(
    monkeypatch, library_loads, expected
):
    import ctypes
    import os

    from sweeplab import devices

    def fake_cdll(name, *args, **kwargs):
        if name == "libnvidia-ml.so.1" and not library_loads:
            raise OSError(f"{name}: cannot open shared object file")
        return object()

    monkeypatch.setattr(ctypes, "CDLL", fake_cdll)
    monkeypatch.setenv(devices.NVML_CHECK, "1")  # as importing Lightning leaves it
    devices.skip_nvml_probe_without_driver()
    assert os.environ[devices.NVML_CHECK] == expected


def test_a_trainer_built_on_a_machine_without_the_driver_asks_torch_without_nvml(tmp_path, monkeypatch):
    import os

    from sweeplab import devices

    monkeypatch.setenv(devices.NVML_CHECK, "1")
    real_cdll = devices.ctypes.CDLL

    def no_nvml(name, *args, **kwargs):
        if name == "libnvidia-ml.so.1":
            raise OSError(f"{name}: cannot open shared object file")
        return real_cdll(name, *args, **kwargs)

    monkeypatch.setattr(devices.ctypes, "CDLL", no_nvml)
    build_trainer(compose_config(FAKE_FAST), tmp_path)
    assert os.environ[devices.NVML_CHECK] == "0"

"""One LightningModule for every classifier: loss, metrics, optimizer and schedule."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from sweeplab.errors import ConfigError, TrainingDiverged
from sweeplab.metrics import TRAIN_ACC, TRAIN_LOSS, VAL_LOSS
from sweeplab.training.rng import capture_rng_state, restore_rng_state
from sweeplab.training.running_totals import RunningTotals

ModelFactory = Callable[..., nn.Module]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]

MAX_MISCLASSIFIED_KEPT = 64
FUSED_DEVICE_TYPES = ("cpu", "cuda")  # where torch's fused Adam, AdamW, SGD and Adagrad kernels run


class ClassifierModule(pl.LightningModule):
    """Trains any ``nn.Module`` that maps images to logits, with cross-entropy.

    Args:
        model: a factory called as ``model(in_shape=..., num_classes=...)``; the
            module tells the architecture its input shape and class count.
        in_shape, num_classes: from the data module.
        optimizer: a factory taking the parameters (a ``functools.partial``).
        scheduler: ``None`` or a factory taking the optimizer. ``total_steps`` (one-cycle)
            is filled in from the trainer when the factory takes it and left it unset.
        scheduler_interval: ``"epoch"`` or ``"step"``: when Lightning steps the scheduler.
        hparams: plain values recorded in checkpoints (the run's flat config).
        finite_check_every: check every N steps that the loss is finite; a NaN or
            infinite loss raises :class:`TrainingDiverged` at once. On a GPU each check
            waits for the device, so a larger N keeps it busy.
        compile_model: compile the architecture with ``torch.compile``.
        channels_last: NHWC memory layout for inputs and weights: True, False, or
            ``"auto"`` (for models with convolutions, on CUDA and CPU devices).
        fused_optimizer: torch's fused optimizer kernel: True, False, or ``"auto"``
            (for optimizers that have one, on CUDA and CPU devices): see :func:`fused_kernel_arguments`.

    Training loss and accuracy are summed in tensors and logged once per epoch
    (:class:`RunningTotals`); validation and test use torchmetrics. Every epoch adds a
    row to :attr:`history`, which checkpoints keep, so a resumed run has all of it.
    """

    def __init__(
        self,
        model: ModelFactory,
        in_shape: tuple[int, int, int],
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        hparams: dict | None = None,
        finite_check_every: int = 1,
        compile_model: bool = False,
        channels_last: bool | str = "auto",
        fused_optimizer: bool | str = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(dict(hparams or {}), logger=False)
        self.model = model(in_shape=tuple(in_shape), num_classes=int(num_classes))
        self.in_shape, self.num_classes = tuple(in_shape), int(num_classes)
        self.example_input_array = torch.zeros(2, *self.in_shape)  # for the layer summary
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.finite_check_every = max(1, int(finite_check_every))
        self.channels_last_setting = channels_last
        self.fused_optimizer_setting = fused_optimizer
        self.memory_format = torch.contiguous_format
        if compile_model:
            self.model.compile()
        self.train_totals = RunningTotals()
        self.val_loss, self.test_loss = (MeanMetric(nan_strategy="disable") for _ in range(2))
        self.val_acc, self.test_acc = (
            MulticlassAccuracy(num_classes, average="micro", validate_args=False) for _ in range(2)
        )
        self.val_confusion = MulticlassConfusionMatrix(num_classes, validate_args=False)
        self.test_confusion = MulticlassConfusionMatrix(num_classes, validate_args=False)
        self.history: list[dict[str, float]] = []
        self.confusion: dict[str, torch.Tensor] = {}
        self.misclassified: list[tuple[torch.Tensor, int, int]] = []
        self._last_val: dict[str, float] = {}
        self._batches_trained = 0
        # a resume that changes the config: its record, and new optimizer/scheduler values for their stored state
        self.config_changes: list[dict[str, Any]] = []
        self.stored_state_updates: dict[str, dict[str, Any]] = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.contiguous(memory_format=self.memory_format))

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # --- memory layout -------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self._wants_channels_last():
            self.memory_format = torch.channels_last
            self.model.to(memory_format=torch.channels_last)

    def _wants_channels_last(self) -> bool:
        """``"auto"``: NHWC for models with convolutions on CUDA and CPU, where cuDNN's and
        oneDNN's convolution and pooling kernels prefer it (benchmarks/memory_layout.py
        measures the gain per model)."""
        if self.channels_last_setting == "auto":
            has_conv = any(isinstance(layer, nn.Conv2d) for layer in self.model.modules())
            return has_conv and self.trainer.strategy.root_device.type in ("cuda", "cpu")
        return bool(self.channels_last_setting)

    # --- steps ---------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        if batch_idx % self.finite_check_every == 0 and not torch.isfinite(loss):
            raise TrainingDiverged(
                f"training loss became {loss.item()} at epoch {self.current_epoch + 1}, step {self.global_step}"
            )
        self.train_totals.update(loss, logits, labels)
        self._batches_trained = batch_idx + 1
        return loss

    def _evaluate(self, batch, loss_metric, acc_metric, confusion) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss_metric.update(F.cross_entropy(logits, labels), len(labels))
        acc_metric.update(logits, labels)
        confusion.update(logits, labels)
        return logits

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_acc, self.val_confusion)

    def test_step(self, batch, batch_idx: int) -> None:
        logits = self._evaluate(batch, self.test_loss, self.test_acc, self.test_confusion)
        self._keep_misclassified(batch[0], logits.argmax(dim=1), batch[1])

    def _keep_misclassified(self, images, predictions, labels) -> None:
        room = MAX_MISCLASSIFIED_KEPT - len(self.misclassified)
        if room <= 0:
            return
        wrong = (predictions != labels).nonzero().flatten()[:room]
        for i in wrong.tolist():
            self.misclassified.append((images[i].cpu(), int(predictions[i]), int(labels[i])))

    # --- epoch ends: log, and keep the history ---------------------------------------
    def _log_epoch(self, stage: str, loss_metric, acc_metric) -> dict[str, float]:
        values = {f"{stage}_loss": loss_metric.compute(), f"{stage}_acc": acc_metric.compute()}
        loss_metric.reset()
        acc_metric.reset()
        self.log_dict(values)
        return {key: float(value) for key, value in values.items()}

    def on_train_epoch_start(self) -> None:
        # the learning rate this epoch trains with (epoch schedulers step at its last batch)
        self._epoch_lr = self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer.optimizers else float("nan")
        self._epoch_started = time.perf_counter()
        self._epoch_closed = False
        self._batches_trained = 0

    def on_validation_epoch_end(self) -> None:
        self._last_val = self._log_epoch("val", self.val_loss, self.val_acc)
        self.confusion["val"] = self.val_confusion.compute().cpu()
        self.val_confusion.reset()
        if self._ends_an_epoch():
            self._close_epoch()

    def _ends_an_epoch(self) -> bool:
        """Whether this validation is the one after an epoch's last batch (not a mid-epoch check)."""
        trainer = self.trainer
        return (
            trainer.state.fn == TrainerFn.FITTING
            and not trainer.sanity_checking
            and self._batches_trained >= trainer.num_training_batches
        )

    def on_train_epoch_end(self) -> None:
        if not self._epoch_closed:  # no validation at the end of this epoch
            self._close_epoch()

    def _close_epoch(self) -> None:
        """Log the training metrics and append the epoch's row to the history.

        Done as soon as the epoch's last validation ends (or at the end of an epoch
        without one), so that the checkpoint saved after it holds this epoch's row.
        """
        means = self.train_totals.means(lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"))
        self.train_totals.reset()
        train = {TRAIN_LOSS.name: means["loss"], TRAIN_ACC.name: means["acc"]}
        self.log_dict(train)
        self.log("lr", self._epoch_lr)
        self.history.append(
            {
                "epoch": self.current_epoch + 1,
                **{key: float(value) for key, value in train.items()},
                **self._last_val,
                "lr": self._epoch_lr,
                "epoch_s": round(time.perf_counter() - self._epoch_started, 3),
            }
        )
        self._last_val = {}
        self._epoch_closed = True

    def on_test_epoch_start(self) -> None:
        self.misclassified = []

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_loss, self.test_acc)
        self.confusion["test"] = self.test_confusion.compute().cpu()
        self.test_confusion.reset()

    # --- checkpoints: history and random state, as plain values ------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["sweeplab_history"] = [dict(row) for row in self.history]
        checkpoint["sweeplab_rng"] = capture_rng_state()
        checkpoint["sweeplab_config_changes"] = list(self.config_changes)
        datamodule = self._trainer.datamodule if self._trainer is not None else None  # type: ignore[attr-defined]  # Lightning sets Trainer.datamodule at run time without declaring it
        if datamodule is not None and hasattr(datamodule, "preprocessing"):
            checkpoint["sweeplab_data"] = datamodule.preprocessing()  # classes, input shape, normalisation

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming training restores the history and random state, and applies the allowed config
        changes to the stored optimizer and scheduler settings (Lightning restores those next);
        evaluating a checkpoint (validate/test the best one after training) keeps this run's history."""
        if self._trainer is not None and self.trainer.state.fn != TrainerFn.FITTING:
            return
        self.history = [dict(row) for row in checkpoint.get("sweeplab_history", [])]
        self.config_changes = list(checkpoint.get("sweeplab_config_changes", [])) + self.config_changes
        if "sweeplab_rng" in checkpoint:
            restore_rng_state(checkpoint["sweeplab_rng"])
        update_stored_state(checkpoint, **self.stored_state_updates)

    # --- optimization ----------------------------------------------------------------
    def configure_optimizers(self):
        kernel = fused_kernel_arguments(
            self.optimizer_factory, self.fused_optimizer_setting, self.trainer.strategy.root_device.type
        )
        optimizer = self.optimizer_factory(self.model.parameters(), **kernel)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = lambda: int(self.trainer.estimated_stepping_batches)  # noqa: E731 (loads the loader: only when asked)
        scheduler = self.scheduler_factory(
            optimizer, **runtime_scheduler_arguments(self.scheduler_factory, total_steps)
        )
        config = {"scheduler": scheduler, "interval": self.scheduler_interval}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = VAL_LOSS.name
        return {"optimizer": optimizer, "lr_scheduler": config}


def fused_kernel_arguments(
    optimizer_factory: OptimizerFactory, setting: bool | str, device_type: str
) -> dict[str, Any]:
    """``{"fused": True}`` where the optimizer should run torch's fused kernel, else ``{}`` (torch's default).

    A fused step updates every weight in one kernel instead of a loop of small ones per
    tensor; for a small model on a CPU that is a noticeable part of each training step
    (``benchmarks/throughput.py`` times it). ``"auto"`` takes it for optimizers whose class
    has the ``fused`` argument, on CPU and CUDA devices; True asks for it anyway.
    """
    takes_fused = "fused" in _parameters(optimizer_factory)
    if setting == "auto":
        return {"fused": True} if takes_fused and device_type in FUSED_DEVICE_TYPES else {}
    if setting and not takes_fused:
        name = getattr(optimizer_factory, "__name__", "the optimizer")
        raise ConfigError("optimizer.fused", setting, f"{name} has no fused kernel (auto uses one where there is)")
    return {"fused": True} if setting else {}


def _parameters(factory: Callable) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}


def update_stored_state(
    checkpoint: dict, optimizer: dict[str, Any] | None = None, scheduler: dict[str, Any] | None = None
) -> None:
    """Put new optimizer settings (``{"lr": 0.01}``) into a checkpoint's stored optimizer param groups,
    and new scheduler settings into its stored schedulers, so that a resumed run trains with them."""
    optimizer, scheduler = optimizer or {}, scheduler or {}
    for state in checkpoint.get("optimizer_states", []):
        for group in state.get("param_groups", []):
            group.update({key: value for key, value in optimizer.items() if key in group})
            if "lr" in optimizer and "initial_lr" in group:
                group["initial_lr"] = optimizer["lr"]
    for state in checkpoint.get("lr_schedulers", []):
        state.update({key: value for key, value in scheduler.items() if key in state})
        if "lr" in optimizer and "base_lrs" in state:
            state["base_lrs"] = [optimizer["lr"]] * len(state["base_lrs"])


def runtime_scheduler_arguments(scheduler_factory: SchedulerFactory, total_steps: Callable[[], int]) -> dict[str, Any]:
    """``total_steps`` (one-cycle) when the factory takes it and its config left it unset."""
    bound = getattr(scheduler_factory, "keywords", {}) or {}
    accepted = _parameters(scheduler_factory)
    return {"total_steps": total_steps()} if "total_steps" in accepted and bound.get("total_steps") is None else {}

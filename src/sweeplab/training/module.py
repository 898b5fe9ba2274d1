"""One LightningModule for every classifier: loss, metrics, optimizer and schedule."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from sweeplab.data.grouping import batches_in
from sweeplab.errors import TrainingDiverged
from sweeplab.training.rng import capture_rng_state, restore_rng_state
from sweeplab.training.running_totals import RunningTotals

ModelFactory = Callable[..., nn.Module]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]

MAX_MISCLASSIFIED_KEPT = 64
CALLBACK_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
MODULE_STEP_HOOKS = (*CALLBACK_STEP_HOOKS, "backward")


def step_needs_lightning(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether backward and the optimizer step must go through Lightning's wrappers.

    Lightning's ``manual_backward`` and ``LightningOptimizer.step`` sync data-parallel
    gradients, scale fp16 losses and call the backward and optimizer hooks of the module
    and every callback: a dozen dispatches, close to a millisecond per step on a 2-core
    CPU (benchmarks/throughput.py, c/a'). In one process, without a loss scaler and with
    none of those hooks overridden, they do nothing ``loss.backward()`` and
    ``optimizer.step()`` do not.
    """
    if not isinstance(trainer.strategy, SingleDeviceStrategy) or getattr(trainer.precision_plugin, "scaler", None):
        return True
    return any(is_overridden(hook, module, pl.LightningModule) for hook in MODULE_STEP_HOOKS) or any(
        is_overridden(hook, callback, Callback) for callback in trainer.callbacks for hook in CALLBACK_STEP_HOOKS
    )


class ClassifierModule(pl.LightningModule):
    """Trains any ``nn.Module`` that maps images to logits.

    Args:
        model: a factory called as ``model(in_shape=..., num_classes=...)``; the
            module tells the architecture its input shape and class count.
        in_shape, num_classes: from the data module.
        optimizer: a factory taking the parameters (a ``functools.partial``).
        scheduler: ``None`` or a factory taking the optimizer. Arguments only known
            at run time (``total_steps`` for one-cycle) are filled in when the
            factory accepts them and the config left them unset.
        scheduler_interval: ``"epoch"`` or ``"step"``.
        hparams: plain values recorded in checkpoints and logs (the run's config).
        finite_check_every: check every N steps that the loss is finite; a NaN or
            infinite loss raises :class:`TrainingDiverged` at once. On a GPU each check
            waits for the device, so a larger N keeps it busy.
        compile_model: compile the architecture with ``torch.compile`` (in place, so
            checkpoints keep the same keys).
        gradient_clip_val: clip the gradient norm to this value before each step (None: no clipping).
        channels_last: NHWC memory layout for inputs and weights: True, False, or
            ``"auto"`` (for models with convolutions, on CUDA and CPU devices).
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
        gradient_clip_val: float | None = None,
    ) -> None:
        super().__init__()
        # The training step calls backward and the optimizer itself: Lightning's automatic
        # optimization wraps every step in a closure and half a dozen hooks, which on a
        # CPU cost a noticeable share of a small model's step (benchmarks/throughput.py).
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self._step_needs_lightning = True  # decided when fitting starts
        self.save_hyperparameters(dict(hparams or {}), logger=False)
        self.model = model(in_shape=tuple(in_shape), num_classes=int(num_classes))
        self.in_shape, self.num_classes = tuple(in_shape), int(num_classes)
        self.example_input_array = torch.zeros(2, *self.in_shape)  # for the layer summary
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.finite_check_every = max(1, int(finite_check_every))
        self.channels_last_setting = channels_last
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
        # per-epoch metrics, kept in checkpoints so a resumed run has its whole history
        self.history: list[dict[str, float]] = []
        self.confusion: dict[str, torch.Tensor] = {}
        self.misclassified: list[tuple[torch.Tensor, int, int]] = []
        self._epoch_row: dict[str, float] = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

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

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.contiguous(memory_format=self.memory_format))

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # --- steps -------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        """One optimizer step per batch: ``batch`` is one batch or a group of them
        (``steps_per_execution``, see :mod:`sweeplab.data.grouping`)."""
        loss = None
        max_steps = self.trainer.max_steps
        for images, labels in batches_in(batch):
            if 0 <= max_steps <= self.global_step:  # a group may run past max_steps; a batch cannot
                break
            loss = self._optimize(images, labels)
        return loss

    def _optimize(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._logits(images)
        loss = F.cross_entropy(logits, labels)
        if self.global_step % self.finite_check_every == 0 and not torch.isfinite(loss):
            raise TrainingDiverged(f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}")
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        if self._step_needs_lightning:
            self.manual_backward(loss)
        else:
            loss.backward()
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        self._optimizer_step(optimizer)
        self._step_schedulers("step")
        self.train_totals.update(loss, logits, labels)
        return loss

    def _evaluate(self, batch, loss_metric, acc_metric, confusion):
        images, labels = batch
        logits = self._logits(images)
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

    # --- epoch ends: log, and keep the history -----------------------------------
    def _log_epoch(self, stage: str, loss_metric, acc_metric) -> dict[str, float]:
        values = {f"{stage}_loss": loss_metric.compute(), f"{stage}_acc": acc_metric.compute()}
        loss_metric.reset()
        acc_metric.reset()
        self.log_dict(values, sync_dist=False)
        return {key: float(value) for key, value in values.items()}

    def _optimizer_step(self, optimizer: LightningOptimizer) -> None:
        """``optimizer.step()``, or, when nothing needs Lightning's wrappers, the bare
        optimizer's step inside the same step counting (``trainer.global_step``)."""
        if self._step_needs_lightning:
            optimizer.step()
            return
        optimizer._on_before_step()  # the loop rebinds these every batch: look them up each step
        optimizer.optimizer.step()
        optimizer._on_after_step()

    def on_fit_start(self) -> None:
        # a Lightning without LightningOptimizer's step-counting attributes gets the wrapped path
        counts_steps = all(hasattr(self.optimizers(), name) for name in ("_on_before_step", "_on_after_step"))
        self._step_needs_lightning = not counts_steps or step_needs_lightning(self.trainer, self)

    def on_train_epoch_start(self) -> None:
        # the learning rate this epoch trains with (epoch schedulers step when the epoch closes)
        self._epoch_lr = self.optimizers().param_groups[0]["lr"] if self.trainer.optimizers else float("nan")
        self._epoch_closed = False
        self._epoch_started = time.perf_counter()

    def on_validation_epoch_end(self) -> None:
        val_row = self._log_epoch("val", self.val_loss, self.val_acc)
        self.confusion["val"] = self.val_confusion.compute().cpu()
        self.val_confusion.reset()
        if self.trainer.state.fn == TrainerFn.FITTING and not self.trainer.sanity_checking:
            self._close_epoch(val_row)

    def on_train_epoch_end(self) -> None:
        if not self._epoch_closed:  # no validation ran this epoch
            self._close_epoch({})

    def _close_epoch(self, val_row: dict[str, float]) -> None:
        """Log the training metrics and append the epoch's row to the history.

        Done as soon as validation ends (or at the end of an epoch without one), so
        the checkpoint saved after it, whichever hook saves it, holds this epoch's row.
        """
        means = self.train_totals.means(lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"))
        self.train_totals.reset()
        train = {"train_loss": means["loss"], "train_acc": means["acc"]}
        self.log_dict(train)
        row = {"epoch": self.current_epoch + 1, **{key: float(value) for key, value in train.items()}}
        self.log("lr", self._epoch_lr)
        row.update(val_row, lr=self._epoch_lr, epoch_s=round(time.perf_counter() - self._epoch_started, 3))
        self.history.append(row)
        self._epoch_closed = True
        self._step_schedulers("epoch", val_loss=val_row.get("val_loss"))

    def _step_schedulers(self, interval: str, val_loss: float | None = None) -> None:
        """Step the schedulers of this interval (the training step drives optimization itself).

        Epoch schedulers step when the epoch's row is closed, before the checkpoint of
        that epoch is written, so a resumed run continues with the next epoch's rate.
        A plateau scheduler steps on the validation loss, and not at all without one.
        """
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval:
                continue
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if val_loss is not None:
                    config.scheduler.step(val_loss)
            else:
                config.scheduler.step()

    def on_test_epoch_start(self) -> None:
        self.misclassified = []

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_loss, self.test_acc)
        self.confusion["test"] = self.test_confusion.compute().cpu()
        self.test_confusion.reset()

    # --- checkpoints: history and random state, as plain values --------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["sweeplab_history"] = [dict(row) for row in self.history]
        checkpoint["sweeplab_rng"] = capture_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming training restores the history and random state; evaluating a checkpoint
        (validate/test on the best one after training) keeps this run's own history."""
        if self._trainer is not None and self.trainer.state.fn != TrainerFn.FITTING:
            return
        self.history = [dict(row) for row in checkpoint.get("sweeplab_history", [])]
        if "sweeplab_rng" in checkpoint:
            restore_rng_state(checkpoint["sweeplab_rng"])

    # --- optimization ------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, **self._runtime_scheduler_args())
        # stepped by _step_schedulers (a plateau scheduler on val_loss)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}

    def _total_steps(self) -> int:
        """Optimizer steps in the whole run, for schedulers that need them (one-cycle).

        Lightning estimates loader items; a loader of groups (``steps_per_execution``)
        holds up to ``group`` steps per item.
        """
        estimate = self.trainer.estimated_stepping_batches  # loads the training loader first
        loader = self.trainer.train_dataloader
        group = getattr(loader, "group", 1)
        if group == 1 or self.trainer.max_epochs == -1:
            return int(estimate)
        per_epoch = loader.batches_in_items(int(self.trainer.num_training_batches))
        total = per_epoch * max(self.trainer.max_epochs, 1)
        return min(total, self.trainer.max_steps) if self.trainer.max_steps >= 0 else total

    def _runtime_scheduler_args(self) -> dict[str, Any]:
        """Arguments only the trainer knows, for factories that take them and left them unset."""
        factory = self.scheduler_factory
        bound = getattr(factory, "keywords", {}) or {}
        try:
            accepted = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            return {}
        known = {"total_steps": self._total_steps}
        return {name: get() for name, get in known.items() if name in accepted and bound.get(name) is None}

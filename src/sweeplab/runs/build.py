"""Turn a composed config into the objects of a run: data module, LightningModule, trainer."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from omegaconf import DictConfig, OmegaConf

from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.errors import UserInputError
from sweeplab.runs.hparams import flat_hparams
from sweeplab.training.epoch_log import EpochLog
from sweeplab.training.module import ClassifierModule

# sweeplab logs once per epoch, never per step, so Lightning's advice to lower log_every_n_steps
# when an epoch has fewer loader items than it (common with steps_per_execution groups) does not apply
warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")

# sweeplab's own keys inside config groups, read here and not passed to the object they configure
SCHEDULER_META_KEYS = ("interval",)
MODEL_META_KEYS = ("compile", "channels_last")


def split_meta(node: DictConfig, meta_keys: tuple[str, ...]) -> tuple[dict, dict]:
    """``(constructor arguments, sweeplab's keys)`` of a config group node."""
    container = OmegaConf.to_container(node, resolve=True)
    meta = {key: container.pop(key) for key in meta_keys if key in container}
    return container, meta


def build_datamodule(cfg: DictConfig) -> InMemoryDataModule:
    return instantiate(cfg.data, steps_per_execution=cfg.get("steps_per_execution", 1))


def build_architecture(cfg: DictConfig, in_shape: tuple[int, int, int], num_classes: int):
    """The bare ``nn.Module`` of ``cfg.model`` for data of this shape (no training wrapper)."""
    model_cfg, _ = split_meta(cfg.model, MODEL_META_KEYS)
    return instantiate(model_cfg)(in_shape=tuple(in_shape), num_classes=int(num_classes))


def build_module(cfg: DictConfig, datamodule: InMemoryDataModule) -> ClassifierModule:
    """The LightningModule for ``cfg``, with the architecture sized to the data."""
    scheduler_factory, interval = None, "epoch"
    if cfg.get("scheduler") and cfg.scheduler.get("_target_"):
        scheduler_cfg, scheduler_meta = split_meta(cfg.scheduler, SCHEDULER_META_KEYS)
        interval = scheduler_meta.get("interval", "epoch")
        scheduler_factory = instantiate(scheduler_cfg)
    model_cfg, model_meta = split_meta(cfg.model, MODEL_META_KEYS)
    try:
        return ClassifierModule(
            model=instantiate(model_cfg),
            in_shape=datamodule.in_shape,
            num_classes=datamodule.num_classes,
            optimizer=instantiate(cfg.optimizer),
            scheduler=scheduler_factory,
            scheduler_interval=interval,
            hparams=flat_hparams(cfg),
            finite_check_every=cfg.get("finite_check_every", 1),
            gradient_clip_val=cfg.get("gradient_clip_val"),
            compile_model=bool(model_meta.get("compile", False)),
            channels_last=model_meta.get("channels_last", "auto"),
        )
    except (ValueError, TypeError) as error:  # a model knob out of range or unknown
        raise UserInputError(f"cannot build model {cfg.model._target_}: {error}") from error


def build_callbacks(cfg: DictConfig, run_dir: Path) -> list[Callback]:
    """The configured callbacks; checkpoints always go to ``run_dir/checkpoints``."""
    callbacks = []
    for spec in (cfg.get("callbacks") or {}).values():
        if spec is None:
            continue
        callback = instantiate(spec)
        if isinstance(callback, ModelCheckpoint):
            callback.dirpath = str(run_dir / "checkpoints")
        callbacks.append(callback)
    return callbacks


def build_logger(cfg: DictConfig, run_dir: Path):
    """The configured logger, writing into the run folder itself."""
    if not cfg.get("logger"):
        return False
    return instantiate(cfg.logger, save_dir=str(run_dir))


def build_trainer(cfg: DictConfig, run_dir: Path, extra_callbacks: Sequence[Callback] = ()) -> pl.Trainer:
    show_progress = cfg.get("progress_bar", "auto")
    if show_progress == "auto":
        show_progress = sys.stderr.isatty()
    callbacks = build_callbacks(cfg, run_dir) + list(extra_callbacks)
    if not show_progress:  # Lightning refuses a progress bar callback when the bar is off
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)] + [EpochLog()]
    return instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        logger=build_logger(cfg, run_dir),
        enable_progress_bar=bool(show_progress),
        enable_model_summary=False,
    )

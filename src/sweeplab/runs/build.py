"""Turn a composed config into the objects of a run: data module, LightningModule, callbacks, trainer.

Every config node with a ``_target_`` is built here, through :func:`construct`, so that
whatever a class refuses (``torch.optim.Adam`` a beta of 2, ``Trainer`` a precision of
``banana``) becomes one :class:`~sweeplab.errors.ConfigError` naming the key, found by
building again with that one argument left at its default.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from pathlib import Path
from typing import Any, cast

import lightning.pytorch as pl
import torch
from hydra.utils import get_object
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from sweeplab.config.trust import resolve_target
from sweeplab.constraints import Boolean, Interval, NoneValue, Options
from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.devices import skip_nvml_probe_without_driver
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.runs.checkpoints import AtomicCheckpointIO
from sweeplab.runs.folder import CHECKPOINT_DIR
from sweeplab.runs.hparams import flat_hparams
from sweeplab.training.epoch_log import EpochLog
from sweeplab.training.module import ClassifierModule, fused_kernel_arguments, runtime_scheduler_arguments

# sweeplab's own keys inside config groups: read here, not passed to the object the group builds
SWEEPLAB_KEYS: dict[str, dict[str, list]] = {
    "model": {"compile": [Boolean()], "channels_last": [Options(("auto",)), Boolean()]},
    "optimizer": {"fused": [Options(("auto",)), Boolean()]},
    "scheduler": {"interval": [Options(("epoch", "step"))]},
}
# what torch.optim's optimizers would take silently (lr=0) or refuse in words of their own
OPTIMIZER_CONSTRAINTS = {
    "lr": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None)],
    "momentum": [Interval(Real, 0, 1, closed="left")],
}
# torch's schedulers check few of their arguments (StepLR(step_size=0) fails at its first epoch's end)
SCHEDULER_CONSTRAINTS = {
    "step_size": [Interval(Integral, 1, None)],
    "gamma": [Interval(Real, 0, None, closed="neither")],
    "T_max": [Interval(Integral, 1, None)],
    "eta_min": [Interval(Real, 0, None)],
    "factor": [Interval(Real, 0, 1, closed="neither")],
    "patience": [Interval(Integral, 0, None)],
    "pct_start": [Interval(Real, 0, 1, closed="neither")],
    "max_lr": [Interval(Real, 0, None, closed="neither")],
}
SCHEDULER_DRY_STEPS = 3  # a schedule that breaks on its first steps (step_size=0) is refused before training
TRAINER_CONSTRAINTS: dict[str, list] = {  # what Lightning's Trainer only refuses once it trains
    "max_epochs": [Interval(Integral, 1, None), Options((-1,), "-1 for no limit")],
    "accumulate_grad_batches": [Interval(Integral, 1, None)],
    "gradient_clip_val": [NoneValue(), Interval(Real, 0, None, closed="neither")],
    "log_every_n_steps": [Interval(Integral, 1, None)],
}


# --- config node -> object ---------------------------------------------------------------


def node_target(key: str, node: Mapping[str, Any]) -> Callable:
    """The class or function a node's ``_target_`` names, or a ConfigError naming the node."""
    target = node.get("_target_")
    try:
        return resolve_target(f"{key}._target_", target, get_object)  # refused unless trusted, before any import
    except UserInputError:
        raise
    except Exception as error:  # noqa: BLE001 (ImportError, AttributeError, ...: a bad dotted path)
        raise ConfigError(f"{key}._target_", target, f"cannot be imported: {_first_line(error)}") from None


def node_arguments(key: str, node: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A node's constructor arguments as plain values: no ``_target_``/``_partial_``, no sweeplab keys."""
    container: dict[str, Any] = (
        cast(dict[str, Any], OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) else dict(node)
    )
    skipped = {"_target_", "_partial_", "_convert_", "_recursive_", *SWEEPLAB_KEYS.get(key, {})}
    return {name: value for name, value in container.items() if name not in skipped}


class factory:  # noqa: N801 (used like functools.partial)
    """A config node as a callable that builds its target, or refuses in one line naming the key; like
    ``functools.partial`` it has ``keywords``, and the target's signature."""

    def __init__(self, key: str, node: DictConfig | Mapping[str, Any]) -> None:
        self.key, self.target, self.keywords = key, node_target(key, node), node_arguments(key, node)
        self.__name__ = getattr(self.target, "__name__", key)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.target)

    def __call__(self, *args: Any, **extra: Any) -> Any:
        kwargs = {**self.keywords, **extra}
        try:
            return self.target(*args, **kwargs)
        except UserInputError:
            raise
        except Exception as error:  # noqa: BLE001 (whatever a class refuses from a config is the config's)
            raise refusal(self.key, self.target, args, kwargs, tuple(self.keywords), error) from None


def construct(key: str, node: DictConfig | Mapping[str, Any], *args: Any, **extra: Any) -> Any:
    """``TARGET(*args, **node arguments, **extra)``; what the target refuses is reported naming the key."""
    return factory(key, node)(*args, **extra)


def refusal(
    key: str,
    target: Callable,
    args,
    kwargs: dict[str, Any],
    blame: Sequence[str],
    error: BaseException,
    probe: Callable[[Any], Any] = lambda built: None,
    doing: str = "refuses",
) -> UserInputError:
    """Name the argument at fault: the one whose default, in its place, lets ``target`` build (and pass ``probe``)."""
    name = getattr(target, "__name__", str(target))
    reason = _first_line(error)
    if str(reason).startswith(f"{key}."):  # the models name their knob themselves
        return UserInputError(reason)
    defaults = _defaults(target)
    for argument in blame:
        if argument not in defaults:
            continue
        trial = {k: v for k, v in kwargs.items() if k != argument}
        try:
            with _quiet():
                probe(target(*args, **trial))
        except Exception:  # noqa: BLE001, S112 (still refused: not this argument)
            continue
        return ConfigError(f"{key}.{argument}", kwargs[argument], f"{name} {doing} it: {reason}")
    given = ", ".join(f"{n}={kwargs[n]!r}" for n in blame if n in kwargs)
    return UserInputError(f"{key}: {name} {doing} its arguments ({given}): {reason}")


def _defaults(target: Callable) -> set[str]:
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return set()
    return {n for n, p in parameters.items() if p.default is not inspect.Parameter.empty}


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) if str(error) else type(error).__name__
    return text[:500]


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's info lines (``GPU available: ...``) while building objects only to check them."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        lightning_log.setLevel(level)


# --- the run's objects ---------------------------------------------------------------


def build_datamodule(cfg: DictConfig) -> InMemoryDataModule:
    return construct("data", cfg.data)


def scheduler_settings(cfg: DictConfig) -> tuple[factory | None, str]:
    """The scheduler factory (None for ``scheduler=none``) and its interval (``epoch`` or ``step``)."""
    node = cfg.get("scheduler")
    if not node or not node.get("_target_"):
        return None, "epoch"
    return factory("scheduler", node), str(node.get("interval", "epoch"))


def build_module(cfg: DictConfig, datamodule: InMemoryDataModule) -> ClassifierModule:
    """The LightningModule for ``cfg``, with the architecture sized to the data."""
    scheduler, interval = scheduler_settings(cfg)
    return ClassifierModule(
        model=factory("model", cfg.model),
        in_shape=datamodule.in_shape,
        num_classes=datamodule.num_classes,
        optimizer=factory("optimizer", cfg.optimizer),
        scheduler=scheduler,
        scheduler_interval=interval,
        hparams=flat_hparams(cfg),
        finite_check_every=cfg.get("finite_check_every", 1),
        compile_model=bool(cfg.model.get("compile", False)),
        channels_last=cfg.model.get("channels_last", "auto"),
        fused_optimizer=cfg.optimizer.get("fused", "auto"),
    )


def build_architecture(cfg: DictConfig, in_shape: tuple[int, int, int], num_classes: int) -> torch.nn.Module:
    """The bare ``nn.Module`` of ``cfg.model`` for data of this shape (no training wrapper)."""
    return factory("model", cfg.model)(in_shape=tuple(in_shape), num_classes=int(num_classes))


def build_callbacks(cfg: DictConfig, run_dir: Path, plots: bool = True) -> list[Callback]:
    """The configured callbacks; checkpoints always go to ``run_dir/checkpoints``, and none for a smoke test
    (``trainer.fast_dev_run``: its weights are worth nothing, and a big model's are hundreds of MB).
    Not ``plots``: without the callbacks that draw the run's plots (``draws_run_plots``; a sweep's trial
    whose plots are drawn after the study, if at all: ``sweep.trial_plots``)."""
    smoke_test = bool(cfg.trainer.get("fast_dev_run"))
    callbacks = []
    for name, spec in (cfg.get("callbacks") or {}).items():
        if spec is None:
            continue
        callback = construct(f"callbacks.{name}", spec)
        if not plots and getattr(callback, "draws_run_plots", False):
            continue
        if isinstance(callback, ModelCheckpoint):
            if smoke_test:
                continue
            callback.dirpath = str(Path(run_dir) / CHECKPOINT_DIR)
        callbacks.append(callback)
    return callbacks


def build_logger(cfg: DictConfig, run_dir: Path):
    """The configured logger, writing into the run folder itself (False: none)."""
    if not cfg.get("logger"):
        return False
    return construct("logger", cfg.logger, save_dir=str(run_dir))


def shows_progress_bar(cfg: DictConfig) -> bool:
    setting = cfg.get("progress_bar", "auto")
    return sys.stderr.isatty() if setting == "auto" else bool(setting)


def build_trainer(
    cfg: DictConfig, run_dir: Path, extra_callbacks: Sequence[Callback] = (), plots: bool = True
) -> pl.Trainer:
    skip_nvml_probe_without_driver()
    show_progress = shows_progress_bar(cfg)
    callbacks = build_callbacks(cfg, run_dir, plots) + list(extra_callbacks)
    if not show_progress:  # Lightning refuses a progress bar callback when the bar is off
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)] + [EpochLog()]
    return construct(
        "trainer",
        cfg.trainer,
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        logger=build_logger(cfg, run_dir),
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO(), *cluster_plugins()],
    )


def cluster_plugins() -> list[Any]:
    """In a SLURM job, Lightning's SLURM environment without its own requeue on SIGUSR1: submitit requeues
    the job (hydra/launcher=slurm, sweep.launcher=slurm), and a requeued run resumes from its last checkpoint."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


# --- building it all once, on nothing, before any data is read --------------------------


def check_buildable(cfg: DictConfig, *, on_this_machine: bool = True) -> None:
    """Build what can be built without data (the data module's object, the model for the shape the
    data will have, optimizer and schedule on one dummy weight, callbacks, the trainer): whatever any
    of them refuses is refused now. Not ``on_this_machine`` (jobs for a cluster's nodes), the trainer is
    built for the CPU: the node's accelerator is checked by the job on the node."""
    with _quiet():
        datamodule = construct("data", cfg.data)
        expected = datamodule.expected_shape()
        if expected is not None:
            build_architecture(cfg, *expected)
        weight = torch.nn.Parameter(torch.zeros(1))
        optimizer_factory = factory("optimizer", cfg.optimizer)
        kernel = fused_kernel_arguments(optimizer_factory, cfg.optimizer.get("fused", "auto"), weight.device.type)
        optimizer = optimizer_factory([weight], **kernel)
        scheduler, _ = scheduler_settings(cfg)
        if scheduler is not None:
            _dry_run_schedule("scheduler", scheduler, optimizer)
        build_callbacks(cfg, Path("."))
        trainer = (
            cfg.trainer
            if on_this_machine
            else {**cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True)), "accelerator": "cpu"}
        )
        construct(
            "trainer",
            trainer,
            logger=False,
            callbacks=[],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )


def _dry_run_schedule(key: str, scheduler_factory: factory, optimizer: torch.optim.Optimizer) -> None:
    """Build the schedule for a short run and step it a few times (its runtime arguments made up)."""
    runtime = runtime_scheduler_arguments(scheduler_factory, lambda: 10)
    scheduler = scheduler_factory(optimizer, **runtime)
    try:
        _step_a_few_times(scheduler)
    except Exception as error:  # noqa: BLE001
        arguments = {**scheduler_factory.keywords, **runtime}
        raise refusal(
            key,
            scheduler_factory.target,
            (optimizer,),
            arguments,
            tuple(scheduler_factory.keywords),
            error,
            probe=_step_a_few_times,
            doing="fails when it steps with",
        ) from None


def _step_a_few_times(scheduler: Any) -> None:
    for _ in range(SCHEDULER_DRY_STEPS):
        scheduler.optimizer.step()
        scheduler.step(1.0) if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) else scheduler.step()

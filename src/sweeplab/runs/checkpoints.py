"""Checkpoints: written so that nothing can half-write them, checked before a run resumes from one.

A resume continues what the checkpoint trained: its config (the flat hyperparameters
saved with it) must be the config given now, except for keys that only say where or
how to run (:data:`SAFE_TO_CHANGE`) and ``trainer.max_epochs`` upwards. Other changes
are refused, naming the keys, unless ``resume_allow_changes=true``; then they are
applied (the optimizer's and scheduler's stored settings too) and recorded.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from sweeplab.cluster import current_job
from sweeplab.config.trust import check_stored_config_file
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.files import remove_stale_temporaries, write_bytes_atomic
from sweeplab.runs.folder import LAST_CHECKPOINT, RunFolder
from sweeplab.runs.hparams import LABELS, RUN_SETTINGS, flat_hparams

log = logging.getLogger(__name__)
ALLOW_CHANGES_KEY = "resume_allow_changes"
SAFE_TO_CHANGE = (
    *RUN_SETTINGS,
    *LABELS,
    ALLOW_CHANGES_KEY,
)  # where or how a run runs, what people call it: not what it trains
NEVER_CHANGED = ("model", "optimizer", "scheduler")  # another class: its stored state cannot be loaded
MAX_EPOCHS = "trainer.max_epochs"


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint that follows its run folder when the folder is moved.

    Lightning drops the best score when the checkpoint folder changed since the state
    was saved (and then versions files as ``best-v1.ckpt``); here the stored paths are
    moved along into this folder first, so a moved run resumes where it is.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir = state_dict.get("dirpath")
        if saved_dir and self.dirpath and saved_dir != self.dirpath:
            state_dict = {key: _moved(value, saved_dir, str(self.dirpath)) for key, value in state_dict.items()}
        super().load_state_dict(state_dict)


def _moved(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old) :]
    if isinstance(value, dict):
        return {_moved(key, old, new): item for key, item in value.items()}
    return value


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but through a temporary file in the checkpoint's own folder,
    flushed to disk and renamed over the old file.

    Lightning's own writer stages the file in the system's temporary folder and moves it
    into place, a copy when that is another disk: a full disk or a kill then leaves a
    truncated checkpoint. Here the previous checkpoint stays whole until the new one is.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getbuffer())
        remove_stale_temporaries(path)  # one process writes a run's checkpoints: others' temporaries are dead


@dataclass(frozen=True)
class Resume:
    """A checked resume: the checkpoint, and the config keys it changes (``{key: (stored, now)}``):
    those the user allowed, and those that follow a longer ``trainer.max_epochs`` (a cosine's ``T_max``)."""

    path: Path
    checkpoint: dict[str, Any] = field(repr=False)
    changes: dict[str, tuple[Any, Any]]

    def group_changes(self, group: str) -> dict[str, Any]:
        """The new values of ``group.*`` keys that changed (``{"lr": 0.01}``), to patch stored state with."""
        return {
            key.removeprefix(f"{group}."): now for key, (_, now) in self.changes.items() if key.startswith(f"{group}.")
        }


def check_resume(cfg: DictConfig, run_dir: Path) -> Resume | None:
    """The checkpoint to resume from, checked against ``cfg``; None when the run starts afresh.

    Raises a one-line :class:`UserInputError` for a missing or unreadable checkpoint, or
    for a config that differs from the checkpoint's (unless ``resume_allow_changes``).
    """
    path = resume_checkpoint(cfg, run_dir)
    if path is None:
        return None
    if cfg.get("resume"):  # the folder's own config is data: one that names code is not a run to continue
        check_stored_config_file(RunFolder(run_dir).config)
    checkpoint = load_checkpoint(path)
    stored = checkpoint.get("hyper_parameters") or {}
    now, as_stored = flat_hparams(cfg), flat_hparams(cfg)
    epochs_done = epochs_trained(checkpoint)
    longer = stored.get(MAX_EPOCHS) is not None and now.get(MAX_EPOCHS) != stored[MAX_EPOCHS]
    if longer:
        if now.get(MAX_EPOCHS) not in (-1, None) and now[MAX_EPOCHS] < epochs_done:
            raise ConfigError(
                MAX_EPOCHS, now[MAX_EPOCHS], f"must be at least {epochs_done}: {path} has trained {epochs_done} epochs"
            )
        as_stored = flat_hparams(_with_max_epochs(cfg, stored[MAX_EPOCHS]))  # what follows max_epochs is no change
    changes = config_changes(stored, as_stored) if stored else {}
    changes.pop(MAX_EPOCHS, None)
    classes = sorted(key for key in changes if key in NEVER_CHANGED)
    if classes:
        raise ConfigError(
            classes[0],
            changes[classes[0]][1],
            f"cannot change on resume: {path} was trained with {changes[classes[0]][0]}; start a new run instead",
        )
    if changes and not cfg.get(ALLOW_CHANGES_KEY, False):
        listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in sorted(changes.items()))
        raise UserInputError(
            f"resume: the config differs from the one {path} was trained with ({listed}); give the "
            f"same values, or {ALLOW_CHANGES_KEY}=true to continue with the new ones (recorded in results.json)"
        )
    follows = {
        key: (as_stored.get(key), value)
        for key, value in now.items()
        if key != MAX_EPOCHS and as_stored.get(key) != value
    }
    return Resume(path, checkpoint, {**changes, **follows})


def epochs_trained(checkpoint: dict[str, Any]) -> int:
    """How many epochs the checkpoint's run had finished (its history's rows)."""
    history = checkpoint.get("sweeplab_history")
    return len(history) if isinstance(history, list) else int(checkpoint.get("epoch", -1)) + 1


def _with_max_epochs(cfg: DictConfig, epochs: int) -> DictConfig:
    copy = cast(DictConfig, OmegaConf.create(OmegaConf.to_container(cfg, resolve=False)))
    copy.trainer.max_epochs = epochs
    return copy


def config_changes(stored: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (stored, now)}`` for every flat config key whose value differs, but the safe ones."""
    keys = set(stored) | set(now)
    return {
        key: (stored.get(key), now.get(key))
        for key in sorted(keys)
        if stored.get(key) != now.get(key) and not key.startswith(SAFE_TO_CHANGE)
    }


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """``ckpt_path`` when set; ``RUN_DIR/checkpoints/last.ckpt`` for ``resume=true``; else None."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise ConfigError("ckpt_path", str(path), "must be an existing checkpoint file")
        return path
    if cfg.get("resume"):
        path = RunFolder(run_dir).last_checkpoint
        if not path.is_file():
            raise ConfigError(
                "resume",
                True,
                f"there is no {LAST_CHECKPOINT} in the run folder {run_dir}; resume a run by giving its folder: "
                "python train.py resume=true hydra.run.dir=RUN_DIR (plus the run's overrides)",
            )
        return path
    return None


def resume_if_requeued(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """``cfg`` with ``resume=true`` when SLURM restarted this job (a requeue) and the run folder holds the
    last checkpoint of its previous attempt: the run goes on where it was, in the same folder."""
    job = current_job()
    if job is None or not job.requeued or cfg.get("resume") or cfg.get("ckpt_path"):
        return cfg
    if not RunFolder(run_dir).last_checkpoint.is_file():
        if Path(run_dir).is_dir():  # an earlier attempt began this run
            log.info(
                "SLURM job %s restarted (%d) before %s had a checkpoint: the run starts again",
                job.id,
                job.restarts,
                run_dir,
            )
        return cfg
    log.info("SLURM job %s restarted (%d): resuming from %s", job.id, job.restarts, RunFolder(run_dir).last_checkpoint)
    resumed = cfg.copy()
    with open_dict(resumed):
        resumed.resume = True
    return resumed


def load_checkpoint(path: Path) -> dict:
    """Load safely (``weights_only=True``: plain values and tensors only) or explain why not."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - truncated, not a checkpoint, unsafe pickle...
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise UserInputError(f"checkpoint {path} cannot be read ({type(error).__name__}: {first_line})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise UserInputError(f"checkpoint {path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def check_checkpoint_fits(checkpoint: dict, path: Path, module: nn.Module) -> None:
    """Refuse a checkpoint whose weights do not match ``module`` (another model or data shape)."""
    saved = checkpoint["state_dict"]
    expected = module.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    reshaped = [k for k in expected if k in saved and tuple(getattr(saved[k], "shape", ())) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}")
        if unexpected:
            details.append(f"unexpected {unexpected[:3]}")
        if reshaped:
            key = reshaped[0]
            details.append(f"{key} has shape {tuple(saved[key].shape)}, the model needs {tuple(expected[key].shape)}")
        raise UserInputError(f"checkpoint {path} does not match this model/config: {'; '.join(details)}")

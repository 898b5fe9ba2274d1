"""Checkpoints: written so that nothing can half-write them, found and checked before a run resumes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig
from torch import nn

from sweeplab.errors import ConfigError, UserInputError
from sweeplab.runs.files import write_bytes_atomic
from sweeplab.runs.folder import LAST_CHECKPOINT, RunFolder


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
                "resume", True,
                f"there is no {LAST_CHECKPOINT} in the run folder {run_dir}; resume a run by giving its folder: "
                "python train.py resume=true hydra.run.dir=RUN_DIR (plus the run's overrides)",
            )
        return path
    return None


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

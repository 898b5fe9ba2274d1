"""Finding and checking the checkpoint a run resumes from, before training starts."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from sweeplab.errors import ConfigError, UserInputError

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """``ckpt_path`` when set; ``RUN_DIR/checkpoints/last.ckpt`` for ``resume=true``; else None."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise ConfigError("ckpt_path", str(path), "must be an existing checkpoint file")
        return path
    if cfg.get("resume"):
        path = run_dir / LAST_CHECKPOINT
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
        raise UserInputError(f"checkpoint {path} cannot be read ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserInputError(f"checkpoint {path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def check_checkpoint_fits(path: Path, module: nn.Module) -> None:
    """Refuse a checkpoint whose weights do not match ``module`` (another model or data shape)."""
    saved = load_checkpoint(path)["state_dict"]
    expected = module.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    reshaped = [k for k in expected if k in saved and tuple(saved[k].shape) != tuple(expected[k].shape)]
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

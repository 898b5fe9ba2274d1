"""A trained model back from its run folder: the resolved config and the best checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.reports.run_records import require_run_config
from sweeplab.runs.build import build_architecture, build_datamodule
from sweeplab.runs.checkpoints import load_checkpoint
from sweeplab.runs.folder import RunFolder

MODEL_PREFIX = "model."  # the LightningModule holds the architecture as ``self.model``


@dataclass
class RestoredRun:
    """A run's config, its trained architecture (eval mode, CPU) and its data, set up."""

    run_dir: Path
    cfg: DictConfig
    model: nn.Module
    datamodule: InMemoryDataModule


def load_run_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``RUN_DIR/.hydra/config.yaml`` with ``key=value`` overrides (a moved ``data.data_dir``, say)."""
    path = require_run_config(run_dir)
    for override in overrides:
        if "=" not in override:
            raise ConfigError("override", override, "KEY=VALUE, e.g. data.data_dir=../shared/data/mnist-10k")
    try:
        cfg = OmegaConf.load(path)
        if not isinstance(cfg, DictConfig):
            raise UserInputError(f"{path} is not a run's config (not a mapping)")
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides))) if overrides else cfg
    except UserInputError:
        raise
    except Exception as error:  # noqa: BLE001 (YAML and OmegaConf errors of a damaged file)
        reason = " ".join(str(error).split())[:300]
        raise UserInputError(f"cannot read {path}{f' with overrides {list(overrides)}' if overrides else ''}: {reason}") from None


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    """The architecture's weights in a Lightning checkpoint (the ``model.`` entries, unprefixed)."""
    if not path.is_file():
        raise UserInputError(f"no checkpoint at {path}: the run saved none (did it finish an epoch?)")
    state = load_checkpoint(path)["state_dict"]
    return {key[len(MODEL_PREFIX):]: value for key, value in state.items() if key.startswith(MODEL_PREFIX)}


def load_run_model(run_dir: str | Path, overrides: Sequence[str] = ()) -> RestoredRun:
    """Rebuild the run's architecture, sized from its data module, with the best checkpoint's weights."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    cfg = load_run_config(run_dir, overrides)
    weights = checkpoint_weights(folder.best_checkpoint)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("test")
    model = build_architecture(cfg, datamodule.in_shape, datamodule.num_classes)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise UserInputError(f"{folder.best_checkpoint} does not fit the model of {folder.config}: "
                             f"{' '.join(str(error).split())[:300]}") from None
    return RestoredRun(run_dir, cfg, model.eval(), datamodule)

"""A trained model back from its run folder: the resolved config and the best checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from torch import nn

from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.runs.build import build_datamodule
from sweeplab.runs.folder import RunFolder
from sweeplab.runs.trained import architecture_weights, best_checkpoint, load_run_config, restore_architecture


@dataclass
class RestoredRun:
    """A run's config, its trained architecture (eval mode, CPU) and its data, set up."""

    run_dir: Path
    cfg: DictConfig
    model: nn.Module
    datamodule: InMemoryDataModule


def load_run_model(run_dir: str | Path, overrides: Sequence[str] = ()) -> RestoredRun:
    """Rebuild the run's architecture, sized from its data module, with the best checkpoint's weights."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, overrides)
    weights = architecture_weights(best_checkpoint(run_dir))
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("test")
    model = restore_architecture(
        cfg, weights, datamodule.in_shape, datamodule.num_classes, RunFolder(run_dir).best_checkpoint
    )
    return RestoredRun(run_dir, cfg, model, datamodule)

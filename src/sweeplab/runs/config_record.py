"""The ``.hydra/`` files of a run folder: the resolved config, the overrides, Hydra's settings.

Written as a ``train.py`` run has them, for every run sweeplab starts (a run, a
trial), only once its checks have passed, so a refused command leaves no trace in a
folder. ``config.yaml`` is resolved: it is exactly what the run trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import yaml
from omegaconf import DictConfig, OmegaConf

from sweeplab.files import write_text_atomic
from sweeplab.redact import redact_data
from sweeplab.runs.folder import RunFolder


def record_run_config(run_dir: Path, cfg: DictConfig, hydra_node: DictConfig | None, overrides: Sequence[str]) -> None:
    """Write ``run_dir/.hydra/{config,overrides,hydra}.yaml``, secrets masked (:mod:`sweeplab.redact`)."""
    folder = RunFolder(run_dir)
    write_text_atomic(folder.config, _yaml(OmegaConf.to_container(cfg, resolve=True)))
    write_text_atomic(folder.overrides, yaml.safe_dump(redact_data(list(overrides)), default_flow_style=False))
    if hydra_node is not None:
        hydra_node = cast(
            DictConfig, OmegaConf.create(OmegaConf.to_container(hydra_node, resolve=False))
        )  # a writable copy
        hydra_node.runtime.output_dir = str(Path(run_dir).resolve())
        write_text_atomic(folder.hydra, _yaml({"hydra": OmegaConf.to_container(hydra_node, resolve=False)}))


def _yaml(container: Any) -> str:
    """``container`` as OmegaConf writes it, secrets masked."""
    return OmegaConf.to_yaml(OmegaConf.create(redact_data(container)))


def recorded_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config a run recorded, or None when the folder has none (another machine's trial)."""
    path = RunFolder(run_dir).config
    return cast(dict[str, Any], OmegaConf.to_container(OmegaConf.load(path))) if path.is_file() else None


def recorded_hydra(run_dir: Path) -> DictConfig | None:
    """The ``hydra:`` node a run recorded in ``.hydra/hydra.yaml`` (unresolved), or None."""
    path = RunFolder(run_dir).hydra
    return OmegaConf.load(path).hydra if path.is_file() else None

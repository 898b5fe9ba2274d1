"""A trial's training config: composed as ``python train.py OVERRIDES`` would, recorded as its runs are.

Each trial folder gets the ``.hydra/`` files of a train.py run (``config.yaml``,
``overrides.yaml``, ``hydra.yaml``), so tools that read run folders read trial
folders too. ``config.yaml`` is resolved: it is exactly what the trial ran.
:func:`standalone_config` turns such a config into a file that
``python train.py --config-path DIR --config-name NAME`` trains again.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeplab.cli.common import CONFIG_DIR
from sweeplab.runs.files import write_text_atomic

HYDRA_DIR = ".hydra"
CONFIG_FILE, OVERRIDES_FILE, HYDRA_FILE = "config.yaml", "overrides.yaml", "hydra.yaml"
_CHOICE = re.compile(r"\$\{hydra:runtime\.choices\.([\w/]+)\}")


def compose_train_config(overrides: Sequence[str]) -> tuple[DictConfig, DictConfig]:
    """``(config, hydra node)`` of ``python train.py OVERRIDES``, without creating a run folder."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        full = compose("train", overrides=list(overrides), return_hydra_config=True)
    hydra_node = full.hydra
    with open_dict(full):
        del full["hydra"]
    return full, hydra_node


def record_run_config(run_dir: Path, cfg: DictConfig, hydra_node: DictConfig, overrides: Sequence[str]) -> None:
    """Write ``run_dir/.hydra/{config,overrides,hydra}.yaml`` as a train.py run has them."""
    folder = Path(run_dir) / HYDRA_DIR
    write_text_atomic(folder / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    write_text_atomic(folder / OVERRIDES_FILE, yaml.safe_dump(list(overrides), default_flow_style=False))
    hydra_node = copy.deepcopy(hydra_node)
    with open_dict(hydra_node):
        hydra_node.runtime.output_dir = str(Path(run_dir).resolve())
    write_text_atomic(folder / HYDRA_FILE, OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_node})))


def recorded_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config a run recorded, or None when the folder has none (another machine's trial)."""
    path = Path(run_dir) / HYDRA_DIR / CONFIG_FILE
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else None


def recorded_hydra(run_dir: Path) -> DictConfig | None:
    """The ``hydra:`` node a run recorded in ``.hydra/hydra.yaml`` (unresolved), or None."""
    path = Path(run_dir) / HYDRA_DIR / HYDRA_FILE
    return OmegaConf.load(path).hydra if path.is_file() else None


def standalone_config(cfg: dict[str, Any], hydra_node: DictConfig) -> dict[str, Any]:
    """A resolved config plus the ``hydra:`` settings of its run, to train it again from its own file.

    Loaded with ``--config-name``, the file has no defaults list, so Hydra has no
    group choices to name the run folder with (``lenet-mnist``): they are written in.
    """
    choices = dict(OmegaConf.select(hydra_node, "runtime.choices", default={}) or {})

    def with_choices(template: str) -> str:
        return _CHOICE.sub(lambda match: str(choices.get(match.group(1), match.group(1))), template)

    node = OmegaConf.to_container(hydra_node, resolve=False)
    hydra = {
        "run": {"dir": with_choices(node["run"]["dir"])},
        "sweep": {"dir": with_choices(node["sweep"]["dir"]), "subdir": node["sweep"]["subdir"]},
        "job": {"chdir": node["job"]["chdir"]},
        **({"callbacks": node["callbacks"]} if node.get("callbacks") else {}),
    }
    return {**{key: value for key, value in cfg.items() if key != "hydra"}, "hydra": hydra}

"""A trial's training config: composed as ``python train.py OVERRIDES`` would, and made standalone.

Each trial folder gets the ``.hydra/`` files of a train.py run
(:mod:`sweeplab.runs.config_record`), so tools that read run folders read trial
folders too. :func:`standalone_config` turns such a config into a file that
``python train.py --config-path DIR --config-name NAME`` trains again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from sweeplab.config.compose import compose_train, without_hydra_node

_CHOICE = re.compile(r"\$\{hydra:runtime\.choices\.([\w/]+)\}")


def compose_train_config(overrides: Sequence[str]) -> tuple[DictConfig, DictConfig]:
    """``(config, hydra node)`` of ``python train.py OVERRIDES``, without creating a run folder."""
    return without_hydra_node(compose_train(overrides, with_hydra=True))


def standalone_config(cfg: dict[str, Any], hydra_node: DictConfig) -> dict[str, Any]:
    """A resolved config plus the ``hydra:`` settings of its run, to train it again from its own file.

    Loaded with ``--config-name``, the file has no defaults list, so Hydra has no
    group choices to name the run folder with (``lenet-mnist``): they are written in.
    """
    choices = dict(OmegaConf.select(hydra_node, "runtime.choices", default={}) or {})

    def with_choices(template: str) -> str:
        return _CHOICE.sub(lambda match: str(choices.get(match.group(1), match.group(1))), template)

    node = cast(dict[str, Any], OmegaConf.to_container(hydra_node, resolve=False))
    hydra = {
        "run": {"dir": with_choices(node["run"]["dir"])},
        "sweep": {"dir": with_choices(node["sweep"]["dir"]), "subdir": node["sweep"]["subdir"]},
        "job": {"chdir": node["job"]["chdir"]},
        **({"callbacks": node["callbacks"]} if node.get("callbacks") else {}),
    }
    return {**{key: value for key, value in cfg.items() if key != "hydra"}, "hydra": hydra}

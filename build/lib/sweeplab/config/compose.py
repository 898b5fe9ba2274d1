"""Composing a training config from overrides, with Hydra's errors turned into one line.

Hydra reports an unknown option or key over many lines and exits with status 1.
Composing through :func:`compose_train` turns those errors into one
:class:`~sweeplab.errors.UserInputError` that names the key or option and what is
allowed. Nothing here imports torch: commands refuse typos in a fraction of a second.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from sweeplab.config.locations import CONFIG_DIR, TRAIN_CONFIG
from sweeplab.errors import ConfigError, UserInputError


def compose_train(
    overrides: Sequence[str],
    *,
    config_dir: str | Path = CONFIG_DIR,
    config_name: str = TRAIN_CONFIG,
    with_hydra: bool = False,
) -> DictConfig:
    """The config ``python train.py OVERRIDES`` runs, or a one-line :class:`UserInputError`.

    ``hydra.*`` overrides are dropped (they configure Hydra, not the run) unless
    ``with_hydra``, which keeps the ``hydra:`` node in the result as well.
    """
    if not with_hydra:
        overrides = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    config_dir = str(Path(config_dir).resolve())
    if not Path(config_dir).is_dir():
        raise ConfigError("--config-path", config_dir, "must be an existing folder of configs")
    try:
        with initialize_config_dir(config_dir, version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=with_hydra)
    except MissingConfigException as error:
        raise _unknown_option(error, config_dir, config_name) from None
    except OverrideParseException as error:
        raise UserInputError(f"cannot parse override {error.override!r}: {error.message.splitlines()[0]}") from None
    except ConfigCompositionException as error:
        raise _unknown_key(error, config_dir, config_name, overrides) from None
    except (HydraException, OmegaConfBaseException, ValueError) as error:  # an interpolation that fails, say
        raise UserInputError(f"cannot compose the config: {_first_line(error)}") from None


def without_hydra_node(cfg: DictConfig) -> tuple[DictConfig, DictConfig]:
    """``(config, hydra node)`` of a config composed ``with_hydra``."""
    hydra_node = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, hydra_node


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _unknown_option(error: MissingConfigException, config_dir: str, config_name: str) -> UserInputError:
    match = re.search(r"Could not find '([^']+)/([^'/]+)'", str(error))
    options = sorted(o for o in (error.options or []) if not o.startswith("_"))  # _base files are not choices
    if match and options:
        group, option = match.groups()
        return ConfigError(group, option, f"not an option; choose one of {', '.join(options)}")
    if not (Path(config_dir) / f"{config_name}.yaml").is_file():
        names = sorted(p.stem for p in Path(config_dir).glob("*.yaml"))
        return ConfigError("--config-name", config_name, f"no such config in {config_dir} (it holds: {', '.join(names) or 'none'})")
    return UserInputError(_first_line(error))


def _unknown_key(error: Exception, config_dir: str, config_name: str, overrides: Sequence[str]) -> UserInputError:
    match = re.search(r"Could not (?:override|append to|delete from) '([^']+)'", str(error))
    if not match:
        return UserInputError(_first_line(error))
    key = match.group(1)
    parent, _, leaf = key.rpartition(".")
    rest = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~") == key]
    try:
        with initialize_config_dir(config_dir, version_base="1.3"):
            composed = compose(config_name, overrides=rest)
        node = OmegaConf.select(composed, parent) if parent else composed
    except Exception:  # noqa: BLE001 - only used to suggest names
        node = None
    valid = sorted(k for k in node.keys() if not str(k).startswith("_")) if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, valid, n=1)
    hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
    where = f"; keys of {parent or 'the config'}: {', '.join(valid)}" if valid else ""
    return UserInputError(f"{key} is not a config key: {hint}(add it with +{key}=... if you mean to){where}")

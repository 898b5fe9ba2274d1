"""Compose a command's config once before Hydra runs it, to refuse bad input in one line.

Hydra reports an unknown option or key over many lines and exits with status 1,
after creating a run folder. Composing first with the same overrides lets every
command turn those errors, and out-of-range values, into one line that names the
key, the value and what is allowed, with exit status 2 and no folder left behind.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from sweeplab.config.validate import validate_config
from sweeplab.errors import ConfigError, UserInputError


def compose_checked(config_dir: str, config_name: str, overrides: Sequence[str]) -> DictConfig:
    """The composed config, or a :class:`UserInputError` describing the first bad override."""
    overrides = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir, version_base="1.3"):
            return compose(config_name, overrides=list(overrides))
    except MissingConfigException as error:
        raise _unknown_option(error) from None
    except OverrideParseException as error:
        raise UserInputError(f"cannot parse override {error.override!r}: {error.message.splitlines()[0]}") from None
    except ConfigCompositionException as error:
        raise _unknown_key(error, config_dir, config_name, overrides) from None


def preflight(config_dir: str, config_name: str, argv: Sequence[str]) -> DictConfig | None:
    """Check ``argv`` of a Hydra command: compose and validate single runs.

    Returns the composed config, or None where the arguments use Hydra's own
    flags (``-m``, ``--config-path``, ...), which Hydra then checks itself.
    """
    if any(arg.startswith("-") for arg in argv):
        return None
    cfg = compose_checked(config_dir, config_name, argv)
    validate_config(cfg)
    return cfg


def _unknown_option(error: MissingConfigException) -> UserInputError:
    match = re.search(r"Could not find '([^']+)/([^'/]+)'", str(error))
    if not match or not error.options:
        return UserInputError(str(error).splitlines()[0])
    group, option = match.groups()
    return ConfigError(group, option, f"not an option; choose one of {', '.join(sorted(error.options))}")


def _unknown_key(error: Exception, config_dir: str, config_name: str, overrides: Sequence[str]) -> UserInputError:
    match = re.search(r"Could not override '([^']+)'", str(error))
    if not match:
        return UserInputError(str(error).splitlines()[0])
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

"""Composing a training config from overrides, with Hydra's errors turned into one line.

Hydra reports an unknown option or key over many lines and exits with status 1.
Composing through :func:`compose_train` turns those errors into one
:class:`~sweeplab.errors.UserInputError` that names the key or option and what is
allowed. Nothing here imports torch: commands refuse typos in a fraction of a second.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException, ValidationError

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


class TrainConfigs:
    """Configs composed as :func:`compose_train` (``with_hydra``) composes them, Hydra run once per distinct set
    of config-group choices: a sweep's trials differ mostly in values (``optimizer.lr=0.01``), and composing
    through Hydra costs a third of a second each time.

    The overrides that only change a value already in the config are applied, in order, to a copy of the
    config composed without them, as Hydra itself applies value overrides after the config groups; the
    ``hydra:`` node then lists all the overrides (``hydra.overrides.task``, ``hydra.job.override_dirname``)
    as Hydra would. Anything else (a group choice, ``+key``, ``~key``, a key the config lacks, a value that
    interpolates) is composed through Hydra: the cache's key.
    """

    def __init__(self, config_dir: str | Path = CONFIG_DIR, config_name: str = TRAIN_CONFIG, keep: int = 8) -> None:
        self.config_dir, self.config_name, self.keep = config_dir, config_name, keep
        self._composed: dict[tuple[str, ...], DictConfig] = {}

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """What ``compose_train(overrides, with_hydra=True)`` returns (a config of the caller's own)."""
        parsed = _parsed(overrides)
        if parsed is None:
            return self._through_hydra(overrides)
        values = [(line, override) for line, override in parsed if self._is_value(override)]
        base = self._base(tuple(line for line, override in parsed if (line, override) not in values))
        choices = OmegaConf.select(base, "hydra.runtime.choices", default={}) or {}
        if any(
            override.key_or_group in choices
            or OmegaConf.select(base, override.key_or_group, default=_ABSENT) is _ABSENT
            for _, override in values
        ):  # a group after all, or a key Hydra refuses: its own message
            return self._through_hydra(overrides)
        cfg = copy.deepcopy(base)
        try:
            for _, override in values:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
        except OmegaConfBaseException:  # a value of the wrong type, say: Hydra's message
            return self._through_hydra(overrides)
        _record_overrides(cfg, parsed)
        return cfg

    def _is_value(self, override: Override) -> bool:
        """Whether ``override`` only sets a value: ``key=value`` of no config group (a folder of the configs), no
        package, no sweep, no ``hydra.`` key, nothing that interpolates."""
        key = override.key_or_group
        return (
            override.type == OverrideType.CHANGE
            and override.package is None
            and not override.is_sweep_override()
            and not override.is_hydra_override()
            and not (Path(self.config_dir) / key.replace(".", "/")).is_dir()
            and "${" not in override.get_value_element_as_str()
        )

    def _base(self, key: tuple[str, ...]) -> DictConfig:
        composed = self._composed.pop(key, None)
        if composed is None:
            composed = self._through_hydra(key)
        self._composed[key] = composed  # the most recently used last
        while len(self._composed) > self.keep:
            self._composed.pop(next(iter(self._composed)))
        return composed

    def _through_hydra(self, overrides: Sequence[str]) -> DictConfig:
        return compose_train(overrides, config_dir=self.config_dir, config_name=self.config_name, with_hydra=True)


_ABSENT = object()


def _parsed(overrides: Sequence[str]) -> list[tuple[str, Override]] | None:
    """Each override with Hydra's reading of it, or None when one does not parse (Hydra's message then)."""
    try:
        return list(zip(overrides, OverridesParser.create().parse_overrides(list(overrides)), strict=True))
    except HydraException:
        return None


def _record_overrides(cfg: DictConfig, parsed: list[tuple[str, Override]]) -> None:
    """The ``hydra:`` node's record of the overrides, as Hydra writes it (``hydra.overrides.task`` in order,
    ``hydra.job.override_dirname`` sorted, without its excluded keys)."""
    task = [override for _, override in parsed if not override.is_hydra_override()]
    naming = cfg.hydra.job.config.override_dirname
    lines = sorted(str(o.input_line) for o in task if o.key_or_group not in naming.exclude_keys)
    cfg.hydra.overrides.task = [str(o.input_line) for o in task]
    cfg.hydra.job.override_dirname = re.sub("[=]", naming.kv_sep, naming.item_sep.join(lines))


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
        return ConfigError(
            "--config-name", config_name, f"no such config in {config_dir} (it holds: {', '.join(names) or 'none'})"
        )
    return UserInputError(_first_line(error))


_TYPE_WORDS = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def _unknown_key(error: Exception, config_dir: str, config_name: str, overrides: Sequence[str]) -> UserInputError:
    """One line for an override, or a config file of a group, that names no key or gives a value of the wrong type
    (a typed node: a structured config of ConfigStore, such as the sweep settings' schema)."""
    text, cause = str(error), error.__cause__
    if (merging := re.search(r"Error merging override (\S+?)=(.*)", text)) and isinstance(cause, ValidationError):
        key, value = merging.group(1).lstrip("+~"), _override_value(merging.group(2))
        return ConfigError(key, value, f"must be {_expected(cause, config_dir, config_name, overrides, key)}")
    if composing := re.search(r"In '([^']+)': (\w+) raised while composing config:", text):
        full_key = re.search(r"full_key: (\S+)", text)
        if composing.group(2) in ("ConfigKeyError", "ConfigAttributeError") and full_key:
            return _not_a_key(full_key.group(1), config_dir, config_name, overrides, f" (in {composing.group(1)})")
        if composing.group(2) == "ValidationError" and full_key:
            value = re.search(r"Value '(.*?)' of type", text)
            return ConfigError(
                full_key.group(1),
                _override_value(value.group(1)) if value else None,
                f"{_type_reason(text)} (in {composing.group(1)})",
            )
    match = re.search(r"Could not (?:override|append to|delete from) '([^']+)'", text)
    if not match:
        return UserInputError(_first_line(error))
    return _not_a_key(match.group(1), config_dir, config_name, overrides)


def _not_a_key(
    key: str, config_dir: str, config_name: str, overrides: Sequence[str], where_from: str = ""
) -> UserInputError:
    parent, _, leaf = key.rpartition(".")
    node = _composed_without(key, config_dir, config_name, overrides, parent)
    valid = sorted(str(k) for k in node if not str(k).startswith("_")) if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, valid, n=1)
    hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
    typed = isinstance(node, DictConfig) and OmegaConf.get_type(node) not in (dict, None)  # a schema: no new keys
    add = "" if typed or where_from else f"(add it with +{key}=... if you mean to)"
    advice = f": {hint}{add}".rstrip() if hint or add else ""
    where = (
        f"{' ' if advice.endswith('?') else '; '}keys of {parent or 'the config'}: {', '.join(valid)}" if valid else ""
    )
    return UserInputError(f"{key} is not a config key{where_from}{advice}{where}")


def _composed_without(key: str, config_dir: str, config_name: str, overrides: Sequence[str], select: str) -> object:
    """The node ``select`` of the config composed without the override of ``key`` (None if that fails too)."""
    rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    try:
        with initialize_config_dir(config_dir, version_base="1.3"):
            composed = compose(config_name, overrides=rest)
        return OmegaConf.select(composed, select) if select else composed
    except Exception:  # noqa: BLE001 - only used to suggest names
        return None


def _expected(cause: ValidationError, config_dir: str, config_name: str, overrides: Sequence[str], key: str) -> str:
    node = _composed_without(key, config_dir, config_name, overrides, key)
    if isinstance(node, DictConfig):
        return f"a mapping of {', '.join(str(k) for k in node) or 'settings'}"
    return _type_reason(str(cause)).removeprefix("must be ")


def _type_reason(text: str) -> str:
    converted = re.search(r"could not be converted to (\w+)", text)
    if converted:
        return f"must be {_TYPE_WORDS.get(converted.group(1), converted.group(1))}"
    if "is not a valid bool" in text:
        return "must be true or false"
    if "Non optional field cannot be assigned None" in text:
        return "must not be null"
    return f"must be another kind of value: {_first_line(ValueError(text))}"


def _override_value(text: str) -> object:
    """An override's value as Hydra reads it (``4`` an int, ``abc`` a string), for messages."""
    try:
        return yaml.safe_load(text) if text else text
    except yaml.YAMLError:
        return text

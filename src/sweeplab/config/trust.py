"""Which ``_target_``s sweeplab builds: stored configs are data, never code.

A config read back from disk (a run folder's ``.hydra/config.yaml``, a study's
``best.yaml``, a trial's overrides) names the classes it builds. sweeplab builds only
those it can name itself:

- every ``_target_`` of ``conf/`` (scanned once: sweeplab's classes, the Trainer, the
  Lightning callbacks and loggers it uses, Hydra launchers and callbacks);
- any class of the libraries behind the ``optimizer`` and ``scheduler`` groups
  (``torch.optim.*``, ``torch.optim.lr_scheduler.*``): their dotted name is checked as a
  string, and once imported the object must be defined in that library, so a path
  through a module's imports (``torch.optim.optimizer.torch.hub.load``) is refused;
- what the user names in :data:`TRUSTED_TARGETS_ENV` (exact dotted names, or module
  prefixes ending in ``.``). It is read from the environment only, never from a file.

Anything else is refused in one line naming the key (and the file), before it is
imported. Every segment of a dotted name must be a public identifier (``sweeplab..x``,
``torch.optim.__builtins__`` are refused whatever is trusted).
"""

from __future__ import annotations

import keyword
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from sweeplab.config.locations import CONFIG_DIR
from sweeplab.config.resolvers import SWEEPLAB_RESOLVERS
from sweeplab.errors import UserInputError

TRUSTED_TARGETS_ENV = "SWEEPLAB_TRUSTED_TARGETS"
TARGET_KEY = "_target_"
# config groups that stand for a library, not one class: any class of the module their targets live in
FAMILY_GROUPS = ("optimizer", "scheduler")
# Python's logging config builds objects from these keys (Hydra's hydra.job_logging / hydra.hydra_logging)
LOGGING_FACTORY_KEYS = ("class", "()")
LOGGING_NODES = ("job_logging", "hydra_logging")
NODE_REFERENCE = re.compile(r"\$\{\s*[A-Za-z0-9_.\[\]-]+\s*\}")  # ${trainer.max_epochs}: data, no resolver
# the configs whose hydra node holds what Hydra may build by itself: the project's, and Hydra's default logging
HYDRA_REFERENCE_CHOICES: tuple[tuple[str, ...], ...] = (
    (),
    ("hydra/job_logging=default", "hydra/hydra_logging=default"),
)
EXTERNAL_PREFIX = "ext://"  # logging's ``ext://module.attr``: imported when the logging config is applied


class UntrustedTarget(UserInputError):
    """A ``_target_`` that is not one sweeplab builds; the message names the key, the value and the file."""

    def __init__(self, key: str, target: Any, source: str | Path | None = None, reason: str | None = None) -> None:
        self.key, self.target, self.source = key, target, source
        where = f" in {source}" if source is not None else ""
        why = reason or (
            f"not a target sweeplab builds (it builds {describe_trusted()}); to trust it, set "
            f"{TRUSTED_TARGETS_ENV}={target} (comma-separated names, or module prefixes ending in '.')"
        )
        super().__init__(f"{key}={target!r}{where} cannot be imported: {why}")


@dataclass(frozen=True)
class TrustedTargets:
    """Exact dotted names, and module prefixes (ending in ``.``) whose objects must be defined below them."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def prefix_of(self, target: str) -> str | None:
        return next((p for p in self.prefixes if target.startswith(p)), None)


# --- the rule ------------------------------------------------------------------------------


def is_public_dotted_name(target: Any) -> bool:
    """``a.b.C`` where every segment is an identifier, not a keyword, not starting with ``_``."""
    if not isinstance(target, str) or not target:
        return False
    return all(
        part.isidentifier() and not keyword.iskeyword(part) and not part.startswith("_") for part in target.split(".")
    )


def check_target(key: str, target: Any, source: str | Path | None = None) -> None:
    """Refuse ``target`` unless it is trusted: a string comparison, nothing is imported."""
    if not is_public_dotted_name(target):
        raise UntrustedTarget(
            key, target, source, "a target is a dotted name of public identifiers, e.g. torch.optim.SGD"
        )
    trusted = trusted_targets()
    if target not in trusted.names and trusted.prefix_of(target) is None:
        raise UntrustedTarget(key, target, source)


def resolve_target(key: str, target: Any, locate: Callable[[str], Any], source: str | Path | None = None) -> Any:
    """The object ``target`` names, located with ``locate`` only once :func:`check_target` allows it; one
    allowed by a module prefix must be defined below that prefix (not imported there from elsewhere)."""
    check_target(key, target, source)
    found = locate(target)
    trusted = trusted_targets()
    prefix = None if target in trusted.names else trusted.prefix_of(target)
    if prefix is not None and not _defined_below(found, prefix):
        home = getattr(found, "__module__", None) or type(found).__name__
        raise UntrustedTarget(
            key,
            target,
            source,
            f"it is {home}'s, not a class of {prefix}*: sweeplab builds only "
            f"what is defined there (or set {TRUSTED_TARGETS_ENV}={target})",
        )
    return found


def _resolve_below_prefix(key: str, target: str, source: str | Path | None) -> None:
    from hydra.utils import get_object  # noqa: PLC0415 (Hydra's public locator, as the builder uses)

    try:
        resolve_target(key, target, get_object, source)
    except UserInputError:
        raise
    except Exception:  # noqa: BLE001, S110 (a trusted name that does not import: the builder says why, naming the key)
        pass


def _defined_below(found: Any, prefix: str) -> bool:
    module = getattr(found, "__module__", None)
    return isinstance(module, str) and callable(found) and (module + ".").startswith(prefix)


def trusted_targets() -> TrustedTargets:
    """conf/'s targets and families, plus the user's (the environment is read at every call)."""
    names, prefixes = _project_targets()
    user = [entry.strip() for entry in os.environ.get(TRUSTED_TARGETS_ENV, "").split(",") if entry.strip()]
    user_names = {e for e in user if is_public_dotted_name(e)}
    user_prefixes = tuple(e for e in user if e.endswith(".") and is_public_dotted_name(e[:-1]))
    return TrustedTargets(names | user_names, prefixes + user_prefixes)


def describe_trusted() -> str:
    _, prefixes = _project_targets()
    shortest = sorted(p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes))
    return "the targets of conf/ and the classes of " + ", ".join(f"{p}*" for p in shortest)


@lru_cache(maxsize=1)
def _project_targets() -> tuple[frozenset[str], tuple[str, ...]]:
    """Every ``_target_`` under conf/ (and the module of those of :data:`FAMILY_GROUPS`, as prefixes)."""
    names, prefixes = set(), set()
    for path in sorted(Path(CONFIG_DIR).rglob("*.yaml")):
        group = path.relative_to(CONFIG_DIR).parts[0]
        try:
            content = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        for _, target in target_values(content):
            if is_public_dotted_name(target):
                names.add(target)
                if group in FAMILY_GROUPS and "." in target:
                    prefixes.add(target.rsplit(".", 1)[0] + ".")
    return frozenset(names), tuple(sorted(prefixes))


# --- whole configs -------------------------------------------------------------------------


def target_values(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(key, value)`` of every ``_target_`` in a plain (YAML or OmegaConf container) tree, at any depth,
    lists included (``callbacks.0``, ``model.block.norm``)."""
    if isinstance(node, Mapping):
        for key, child in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == TARGET_KEY and child is not None:
                yield path, child
            else:
                yield from target_values(child, path)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from target_values(child, f"{prefix}.{index}" if prefix else str(index))


def logging_factories(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """What Python's logging config would import in a ``hydra.job_logging`` node: ``class``, ``()``, ``ext://``."""
    if isinstance(node, Mapping):
        for key, child in node.items():
            path = f"{prefix}.{key}"
            if key in LOGGING_FACTORY_KEYS and child is not None:
                yield path, child
            else:
                yield from logging_factories(child, path)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from logging_factories(child, f"{prefix}.{index}")
    elif isinstance(node, str) and node.startswith(EXTERNAL_PREFIX):
        yield prefix, node[len(EXTERNAL_PREFIX) :]


def check_config_targets(
    container: Any, source: str | Path | None = None, also_trusted: frozenset[str] = frozenset()
) -> None:
    """Every ``_target_`` of ``container`` (and what a ``hydra`` node's logging config imports) is trusted;
    ``also_trusted``: exact names trusted besides (Hydra's own defaults, for a composed ``hydra`` node)."""
    for key, target in target_values(container):
        if not (isinstance(target, str) and target in also_trusted):
            check_target(key, target, source)
            if target not in trusted_targets().names:  # trusted by a prefix: defined there? (imports only below it)
                _resolve_below_prefix(key, target, source)
    hydra_node = container.get("hydra") if isinstance(container, Mapping) else None
    if isinstance(hydra_node, Mapping):
        for name in LOGGING_NODES:
            for key, factory in logging_factories(hydra_node.get(name), f"hydra.{name}"):
                if not (isinstance(factory, str) and factory in also_trusted):
                    check_target(key, factory, source)


def project_hydra_factories(hydra_container: Mapping[str, Any]) -> frozenset[str]:
    """The targets and logging factories of the project's own composed ``hydra`` node (Hydra's defaults)."""
    found = {str(t) for _, t in target_values(hydra_container)}
    for name in LOGGING_NODES:
        found |= {str(f) for _, f in logging_factories(hydra_container.get(name), f"hydra.{name}")}
    return frozenset(found)


def interpolations(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(key, text)`` of every string holding ``${`` in a config tree, unresolved (an OmegaConf node is read
    through ``OmegaConf.to_container(resolve=False)``: its interpolations come back as their text)."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, Mapping):
        items: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(child, str) and "${" in child:
            yield path, child
        else:
            yield from interpolations(child, path)


def calls_foreign_resolver(text: str) -> bool:
    """Whether ``text`` interpolates with a resolver other than sweeplab's own (``${oc.env:HOME}``, ``${now:}``);
    references to other keys (``${trainer.max_epochs}``, ``${.monitor}``) and sweeplab's resolvers are data."""
    own = re.compile(r"\$\{\s*(?:%s)\s*:[^${}]*\}" % "|".join(map(re.escape, SWEEPLAB_RESOLVERS)))  # noqa: UP031
    while True:
        stripped = own.sub("", NODE_REFERENCE.sub("", text))
        if stripped == text:
            return "${" in text
        text = stripped


def check_stored_config(cfg: Any, source: str | Path) -> None:
    """A config read back from ``source`` is data: no interpolation (it was written resolved, and a resolver
    would run on it) and only trusted targets; refused in one line naming the key and the file."""
    for key, text in interpolations(cfg):
        if calls_foreign_resolver(text):
            raise UserInputError(
                f"{key}={text!r} in {source} calls a resolver: a stored config is data, so sweeplab "
                f"runs none on it but its own ({', '.join(SWEEPLAB_RESOLVERS)}); ${{other.key}} "
                "references are allowed"
            )
    check_config_targets(OmegaConf.to_container(cfg, resolve=False), source)


def check_stored_config_file(path: str | Path) -> None:
    """:func:`check_stored_config` for a file; one that cannot be parsed is left to its reader, which says why."""
    try:
        cfg = OmegaConf.load(path)
    except Exception:  # noqa: BLE001 (YAML and OmegaConf errors: the reader refuses the damaged file)
        return
    check_stored_config(cfg, path)


def check_config_dir_targets(config_dir: str | Path, config_name: str, overrides: Sequence[str]) -> None:
    """A config given with ``--config-path`` (a study's ``best.yaml``) is data too: composed as Hydra will run
    it, ``hydra`` node included (Hydra itself builds its callbacks, launcher and logging), every target is
    trusted or one of Hydra's own defaults (those of the project's own composed config, and of Hydra's default
    logging config, which a standalone ``best.yaml`` gets: it does not pick sweeplab's)."""
    from sweeplab.config.compose import compose_train  # noqa: PLC0415 (Hydra's compose API: only for this check)

    composed = compose_train(overrides, config_dir=config_dir, config_name=config_name, with_hydra=True)
    hydra_defaults: frozenset[str] = frozenset()
    for reference_overrides in HYDRA_REFERENCE_CHOICES:  # the project's logging, and Hydra's own (a file handler)
        reference = compose_train(list(reference_overrides), with_hydra=True)
        hydra_defaults |= project_hydra_factories(
            cast(dict[str, Any], OmegaConf.to_container(reference.hydra, resolve=False))
        )
    check_config_targets(
        OmegaConf.to_container(composed, resolve=False),
        Path(config_dir) / f"{config_name}.yaml",
        also_trusted=hydra_defaults,
    )

"""Check a composed config before any data is read or any file written.

Three passes, each refusing the first problem in one line naming the key:

1. the whole config resolves (interpolations such as ``${oc.env:...}``, ``${metric_mode:...}``);
2. the run's own keys (:data:`RUN_CONSTRAINTS`) and, for every node with a ``_target_``,
   the target imports, takes the arguments given, and each argument fits the target's
   type hints and its ``parameter_constraints`` (:mod:`sweeplab.constraints`);
3. everything that can be built without data is built once, on nothing
   (:func:`sweeplab.runs.build.check_buildable`): what a library refuses is refused now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeplab.constraints import (
    Boolean,
    Interval,
    NoneValue,
    Options,
    Satisfies,
    accepted_arguments,
    check_params,
    check_value,
    target_constraints,
)
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.metrics import PER_EPOCH
from sweeplab.runs.build import (
    OPTIMIZER_CONSTRAINTS,
    SCHEDULER_CONSTRAINTS,
    SWEEPLAB_KEYS,
    TRAINER_CONSTRAINTS,
    check_buildable,
    node_target,
)
from sweeplab.runs.hparams import NOTES, TAGS

MAX_SEED = 2**32 - 1  # what seed_everything accepts


def _is_tag(value: Any) -> bool:
    return (
        isinstance(value, (str, int, float))
        and not isinstance(value, bool)
        and bool(str(value).strip())
        and "," not in str(value)
    )


def _are_tags(value: Any) -> bool:
    """A tag or a list of tags: words without commas (a table shows them joined by commas)."""
    return _is_tag(value) or (OmegaConf.is_list(value) or isinstance(value, list)) and all(_is_tag(v) for v in value)


# the keys of conf/train.yaml that the run itself reads (runs.fit, runs.build, runs.checkpoints)
RUN_CONSTRAINTS: dict[str, list] = {
    "seed": [Interval(Integral, 0, MAX_SEED)],
    "evaluate_test": [Boolean()],
    "resume": [Boolean()],
    "resume_allow_changes": [Boolean()],
    "ckpt_path": [NoneValue(), Satisfies(lambda v: Path(str(v)).is_file(), "an existing checkpoint file")],
    "progress_bar": [Options(("auto", True, False), "auto, true or false")],
    "verbose": [Boolean()],
    "lr_find": [Boolean()],
    "finite_check_every": [Interval(Integral, 1, None)],
    TAGS: [NoneValue(), Satisfies(_are_tags, "a list of tags without commas, e.g. +tags=[baseline,lr-study]")],
    NOTES: [NoneValue(), Satisfies(lambda v: isinstance(v, str), 'a text, e.g. notes="first try with dropout"')],
    "early_stopping.monitor": [Options(PER_EPOCH)],
    "early_stopping.patience": [Interval(Integral, 1, None)],
    # a run without validation has nothing to stop early on or to pick its best checkpoint by: refused
    "trainer.limit_val_batches": [
        NoneValue(),
        Satisfies(
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
            "a number above 0 (a fraction such as 0.25, or a count of batches such as 1, validates less): sweeplab "
            "stops early and keeps its best checkpoint by validation; to train on more of the pool lower "
            "data.val_fraction",
        ),
    ],
}
REQUIRED_KEYS = ("seed", "data", "model", "optimizer", "trainer")
# constraints sweeplab adds to a target's own, by config key
EXTRA_CONSTRAINTS: dict[str, dict[str, list]] = {
    "trainer": TRAINER_CONSTRAINTS,
    "optimizer": {**OPTIMIZER_CONSTRAINTS, **SWEEPLAB_KEYS["optimizer"]},
    "scheduler": {**SCHEDULER_CONSTRAINTS, **SWEEPLAB_KEYS["scheduler"]},
    "model": SWEEPLAB_KEYS["model"],
}
_MISSING = object()


def check_config(cfg: DictConfig, *, on_this_machine: bool = True) -> None:
    """Raise :class:`~sweeplab.errors.UserInputError` for the first thing in ``cfg`` that cannot run
    (not ``on_this_machine``: on a cluster's node, whose accelerator is not checked here)."""
    for key in REQUIRED_KEYS:
        if key not in cfg:
            raise ConfigError(key, None, "missing from the config")
    for key, rule in RUN_CONSTRAINTS.items():  # before resolving: other keys interpolate these
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is not _MISSING:
            check_value(key, value, rule)
    container = resolved(cfg)
    # the trainer first: other groups interpolate its values (a cosine's T_max is ${trainer.max_epochs})
    for key, node in sorted(target_nodes(container), key=lambda item: item[0] != "trainer"):
        check_target_node(key, node)
    check_buildable(cfg, on_this_machine=on_this_machine)


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain values, every interpolation resolved, or one line naming the key that fails."""
    try:
        return cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "the config"
        reason = " ".join(str(error).split("\n")[0].split())
        raise UserInputError(f"{key}: cannot be resolved: {reason}") from None


def target_nodes(node: Any, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, node)`` for every mapping with a non-null ``_target_``, outermost first (not ``hydra``)."""
    if not isinstance(node, Mapping):
        return
    if node.get("_target_") is not None:
        yield prefix, dict(node)
    for key, child in node.items():
        if key != "hydra" and isinstance(child, Mapping):
            yield from target_nodes(child, f"{prefix}.{key}" if prefix else str(key))


def check_target_node(key: str, node: Mapping[str, Any]) -> None:
    """The node's target imports and takes each of its arguments, with a value it allows."""
    target = node_target(key, node)
    own = EXTRA_CONSTRAINTS.get(key, {})
    arguments = {k: v for k, v in node.items() if not k.startswith("_") and k not in SWEEPLAB_KEYS.get(key, {})}
    accepted = accepted_arguments(target)
    if accepted is not None:
        for name, value in arguments.items():
            if name not in accepted:
                name_of = getattr(target, "__name__", str(target))
                allowed = ", ".join(
                    sorted(a for a in accepted if not a.startswith("_") and a not in ("params", "optimizer"))
                )
                raise ConfigError(f"{key}.{name}", value, f"{name_of} takes no such argument; it takes {allowed}")
    check_params(node, {**target_constraints(target), **own}, prefix=f"{key}.")

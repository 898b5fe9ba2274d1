"""Range checks on the values users type, run before any data is loaded or model built.

Hydra already refuses unknown groups and keys (listing the valid options); these
rules catch values of the right type but the wrong range, with one line naming
the key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.errors import ConfigError

_MISSING = object()


def is_number(value: Any) -> bool:
    """A real number that is not a bool (YAML's true/false are ints to Python)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    key: str
    check: Callable[[Any], bool]
    allowed: str
    required: bool = False


RULES: tuple[Rule, ...] = (
    Rule("seed", is_int, "an integer", required=True),
    Rule("optimizer.lr", lambda v: is_number(v) and v > 0, "a number > 0", required=True),
    Rule("optimizer.weight_decay", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    Rule("optimizer.momentum", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    Rule("data.batch_size", lambda v: is_int(v) and v >= 1, "an integer >= 1", required=True),
    Rule("data.eval_batch_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    Rule("data.val_fraction", lambda v: is_number(v) and 0 < v < 1, "a number in (0, 1)"),
    Rule("data.resize", lambda v: v is None or (is_int(v) and v >= 8), "null or an integer >= 8"),
    Rule("data.num_samples", lambda v: is_int(v) and v >= 2, "an integer >= 2"),
    Rule("data.num_classes", lambda v: is_int(v) and v >= 2, "an integer >= 2"),
    Rule("data.channels", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    Rule("data.size", lambda v: is_int(v) and v >= 4, "an integer >= 4"),
    Rule("model.dropout", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    Rule("trainer.max_epochs", lambda v: is_int(v) and (v >= 1 or v == -1), "an integer >= 1 (or -1 for no limit)"),
    Rule("gradient_clip_val", lambda v: v is None or (is_number(v) and v > 0), "null or a number > 0"),
    # the training step runs the optimizer itself (see ClassifierModule): these two Trainer
    # options belong to Lightning's automatic optimization
    Rule("trainer.gradient_clip_val", lambda v: v is None,
         "null: sweeplab clips gradients itself, set gradient_clip_val=VALUE instead"),
    Rule("trainer.accumulate_grad_batches", lambda v: v == 1,
         "1: gradient accumulation is not supported; raise data.batch_size instead"),
    Rule("steps_per_execution", lambda v: v == "auto" or (is_int(v) and v >= 1), "auto or an integer >= 1"),
    Rule("early_stopping.patience", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    Rule("ckpt_path", lambda v: v is None or Path(str(v)).is_file(), "null or an existing checkpoint file"),
)


def validate_config(cfg: DictConfig, rules: tuple[Rule, ...] = RULES) -> None:
    """Raise :class:`ConfigError` for the first value that breaks a rule."""
    for rule in rules:
        value = OmegaConf.select(cfg, rule.key, default=_MISSING)
        if value is _MISSING:
            if rule.required:
                raise ConfigError(rule.key, None, f"missing; must be {rule.allowed}")
            continue
        if not rule.check(value):
            raise ConfigError(rule.key, value, f"must be {rule.allowed}")

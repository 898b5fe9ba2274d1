"""The OmegaConf resolvers sweeplab's configs use.

``${unique:}`` tells apart run folders started in the same second;
``${metric_mode:val_loss}`` is ``min`` (``max`` for an accuracy), what Lightning's
checkpoint and early-stopping callbacks call the direction of their monitored metric.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from sweeplab.metrics import metric

# sweeplab's own resolvers: they read no environment, file or code, so a stored config may use them
# (sweeplab.config.trust refuses any other resolver in a config read back from disk)
SWEEPLAB_RESOLVERS = ("unique", "metric_mode")


def _unique_suffix() -> str:
    """Part of a run folder's name that differs between processes started in the same second."""
    return f"{os.getpid()}"


def _metric_mode(name: str | None) -> str:
    """``max`` for a metric where higher is better, else ``min`` (also for no metric: nothing to compare)."""
    return "max" if name is not None and metric(name).higher_is_better else "min"


def register_resolvers() -> None:
    """Register the resolvers once per process (commands, tests and spawned workers call it)."""
    if not OmegaConf.has_resolver("unique"):
        OmegaConf.register_new_resolver("unique", _unique_suffix, use_cache=True)
    if not OmegaConf.has_resolver("metric_mode"):
        OmegaConf.register_new_resolver("metric_mode", _metric_mode)

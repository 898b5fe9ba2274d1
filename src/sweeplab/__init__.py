"""sweeplab: train, sweep, cross-validate and compare image classifiers."""

from __future__ import annotations

__version__ = "0.2.0"


def load_run(run_dir, overrides=()):
    """A run's trained model, ready to predict: see :func:`sweeplab.runs.trained.load_run`.

    ``import sweeplab`` stays light: torch and Lightning are imported by the call.
    """
    from sweeplab.runs.trained import load_run as load  # noqa: PLC0415

    return load(run_dir, overrides)

"""Plots written into a run's folder when it ends (filled in by the comparison issue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_run_plots(run_dir: Path, results: dict[str, Any], module, trainer) -> None:
    """Write the run's plots (curves, confusion matrix, misclassified images)."""

"""Finding runs on disk and reading what they recorded, for tables that compare them.

A run is a folder holding ``results.json`` (written by :func:`sweeplab.runs.fit.fit`
even when the run fails). A folder with a ``.hydra/config.yaml`` but no
``results.json`` in or below it is a run that never got to write one (killed, say):
it is listed too, with status ``no results``, rather than silently left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeplab.errors import UserInputError
from sweeplab.runs.hparams import flat_hparams

RESULTS_FILE = "results.json"
CONFIG_FILE = Path(".hydra") / "config.yaml"
HYDRA_FILE = Path(".hydra") / "hydra.yaml"
NO_RESULTS = "no results"
UNREADABLE = "unreadable results"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster where built


@dataclass
class RunRecord:
    """One run as a row of a comparison: its hyperparameters and its recorded numbers."""

    path: Path
    status: str
    dataset: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)  # Hydra group choices: model=lenet

    def has(self, key: str) -> bool:
        return any(key in source for source in (self.results, self.hparams, self.choices))


def find_run_dirs(path: Path) -> list[Path]:
    """Run folders at or below ``path``: those with ``results.json``, and unfinished Hydra runs."""
    finished = {results.parent for results in path.rglob(RESULTS_FILE)}
    holding_results = finished | {parent for run in finished for parent in run.parents}
    configured = {config.parent.parent for config in path.rglob(str(CONFIG_FILE))}
    return sorted(finished | (configured - holding_results))


def load_run(run_dir: Path) -> RunRecord:
    """Read a run folder; a missing or damaged ``results.json`` gives a record saying so."""
    results_path = run_dir / RESULTS_FILE
    choices = _group_choices(run_dir)
    if not results_path.is_file():
        return RunRecord(run_dir, NO_RESULTS, hparams=_hparams_from_config(run_dir), choices=choices)
    try:
        results = json.loads(results_path.read_text())
    except (OSError, json.JSONDecodeError):
        return RunRecord(run_dir, UNREADABLE, hparams=_hparams_from_config(run_dir), choices=choices)
    hparams = results.get("hparams") or _hparams_from_config(run_dir)
    return RunRecord(run_dir, str(results.get("status", "unknown")), results.get("dataset"), hparams, results, choices)


def load_runs(paths: Iterable[str | Path]) -> list[RunRecord]:
    """Every run in or below ``paths`` (run folders, multirun roots, sweep folders), each once."""
    run_dirs: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UserInputError(f"path {str(raw)!r} does not exist")
        found = find_run_dirs(path)
        if not found:
            raise UserInputError(f"path {str(raw)!r} holds no run (no {RESULTS_FILE} or {CONFIG_FILE} in or below it)")
        run_dirs.update(dict.fromkeys(found))
    return [load_run(run_dir) for run_dir in run_dirs]


def require_run_config(run_dir: str | Path) -> Path:
    """``RUN_DIR/.hydra/config.yaml``, or a one-line error saying why there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"run folder {str(run_dir)!r} does not exist")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise UserInputError(f"{str(run_dir)!r} has no {CONFIG_FILE}: not a run folder written by train.py")
    return path


def _hparams_from_config(run_dir: Path) -> dict[str, Any]:
    """The flat hyperparameters of ``.hydra/config.yaml`` (for runs without results)."""
    try:
        return flat_hparams(OmegaConf.load(run_dir / CONFIG_FILE))
    except (OSError, OmegaConfBaseException):
        return {}


def _group_choices(run_dir: Path) -> dict[str, str]:
    """Which option of each config group the run used (``model: lenet``), from ``.hydra/hydra.yaml``."""
    try:
        with open(run_dir / HYDRA_FILE) as handle:
            choices = yaml.load(handle, Loader=YAML_LOADER)["hydra"]["runtime"]["choices"]
        return {str(group): str(option) for group, option in choices.items() if not str(group).startswith("hydra")}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return {}

"""Finding runs on disk and reading what they recorded, for tables that compare them.

A run is a folder holding ``results.json`` (written by :func:`sweeplab.runs.fit.fit`
even when the run fails), or a cross-validation run holding ``cv_report.json`` (its
folds are runs below it, shown only when asked for by path). A folder with a
``.hydra/config.yaml`` but nothing of the kind in or below it is a run that never
got to write one (killed, say): it is listed too, with status ``no results``. A
damaged file is named in a warning and the run listed as ``unreadable``; nothing
a run folder holds can make a reader fail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from omegaconf import DictConfig, OmegaConf

from sweeplab.errors import UserInputError
from sweeplab.runs.folder import CONFIG_FILE, CV_REPORT_JSON, RESULTS_FILE, RunFolder
from sweeplab.runs.hparams import NOT_HYPERPARAMETERS, flat_hparams
from sweeplab.runs.results import RunResults, UnreadableResults
from sweeplab.safe_read import UnreadableFile, read_json_file

log = logging.getLogger(__name__)

NO_RESULTS = "no results"
UNREADABLE = "unreadable"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster where built


@dataclass
class RunRecord:
    """One run as a row of a comparison: its hyperparameters and its recorded numbers."""

    path: Path
    status: str
    dataset: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)  # config group choices replace class names
    results: dict[str, Any] = field(default_factory=dict)


def find_run_dirs(path: Path) -> list[Path]:
    """Run folders at or below ``path``: runs, cross-validation runs (not their folds), unfinished runs."""
    cv_runs = {report.parent for report in path.rglob(CV_REPORT_JSON)}
    runs = {results.parent for results in path.rglob(RESULTS_FILE)}
    inside_cv = {run for run in runs if any(parent in cv_runs for parent in run.parents)}
    finished = (runs - inside_cv) | cv_runs
    holding = finished | inside_cv | {parent for run in finished | inside_cv for parent in run.parents}
    configured = {config.parent.parent for config in path.rglob(CONFIG_FILE)}
    return sorted(finished | (configured - holding))


def load_run(run_dir: Path) -> RunRecord:
    """Read a run folder; a missing or damaged file gives a record saying so (and a warning)."""
    folder = RunFolder(run_dir)
    choices = _group_choices(folder)
    source = folder.cv_report if folder.cv_report.is_file() else folder.results
    if not source.is_file():
        return RunRecord(run_dir, NO_RESULTS, hparams={**_hparams_from_config(folder), **choices})
    try:
        results = _cv_results(source) if source == folder.cv_report else RunResults.read(source).to_dict()
    except UnreadableResults as error:
        log.warning("skipping the numbers of %s: %s", run_dir, error)
        return RunRecord(run_dir, UNREADABLE, hparams={**_hparams_from_config(folder), **choices})
    hparams = results.get("hparams") or _hparams_from_config(folder)
    return RunRecord(run_dir, results["status"], results.get("dataset"), {**hparams, **choices}, results)


def _cv_results(path: Path) -> dict[str, Any]:
    """A cross-validation report, checked like a run's results (its metrics are fold means)."""
    try:
        report = read_json_file(path)
    except UnreadableFile as error:  # missing, damaged, too large or too deeply nested: the message names it
        raise UnreadableResults(str(error)) from None
    if not isinstance(report, dict):
        raise UnreadableResults(f"{path} is not a cross-validation report (not a mapping)")
    RunResults.from_dict({k: v for k, v in report.items() if k != "history"}, source=str(path))  # types only
    return report


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


def _hparams_from_config(folder: RunFolder) -> dict[str, Any]:
    """The flat hyperparameters of ``.hydra/config.yaml`` (for runs without results)."""
    if not folder.config.is_file():
        return {}
    try:
        return flat_hparams(cast(DictConfig, OmegaConf.load(folder.config)))  # a list fails there: caught below
    except Exception as error:  # noqa: BLE001 (a damaged file: YAML, OmegaConf or interpolation errors)
        log.warning("skipping the config of %s: %s", folder.path, " ".join(str(error).split())[:200])
        return {}


def _group_choices(folder: RunFolder) -> dict[str, str]:
    """Which option of each config group the run used (``model: lenet``), from ``.hydra/hydra.yaml``."""
    try:
        with open(folder.hydra) as handle:
            choices = yaml.load(handle, Loader=YAML_LOADER)["hydra"]["runtime"]["choices"]
        return {
            str(group): str(option)
            for group, option in choices.items()
            if not str(group).startswith("hydra") and str(group) not in NOT_HYPERPARAMETERS
        }
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError, RecursionError):
        return {}

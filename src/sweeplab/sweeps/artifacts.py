"""Each trial's plots as Optuna artifacts, so that optuna-dashboard shows them beside the trial.

The files (``curves.png``, ``confusion.png``, ``misclassified.png``: whatever ``*.png``
the trial folder holds once its training ended) are copied into
``<sweep dir>/artifacts`` (:class:`optuna.artifacts.FileSystemArtifactStore`) and
recorded in the study; ``optuna-dashboard STORAGE --artifact-dir <sweep dir>/artifacts``
serves them. An upload is a convenience: one that fails is logged in one line and
the trial goes on.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.exceptions import ExperimentalWarning

log = logging.getLogger(__name__)

ARTIFACT_DIR = "artifacts"


def artifact_store(study_dir: Path) -> FileSystemArtifactStore:
    """The study's artifact store, ``<study_dir>/artifacts``."""
    folder = Path(study_dir) / ARTIFACT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(folder)


def upload_plots(trial: optuna.Trial, trial_dir: Path, study_dir: Path) -> int:
    """Upload the ``*.png`` files of ``trial_dir`` as artifacts of ``trial``; returns how many were.

    Never raises: the first failure is logged, in one line, and ends the uploads of this trial.
    """
    done = 0
    try:
        plots = sorted(Path(trial_dir).glob("*.png"))
        if not plots:
            return 0
        store = artifact_store(study_dir)
        for path in plots:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial, mimetype="image/png")
            done += 1
    except Exception as error:  # noqa: BLE001 (a picture is never worth a trial)
        log.warning(
            "trial %d: %d plots uploaded as Optuna artifacts, then %s: %s; the trial goes on",
            trial.number,
            done,
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
        )
    return done

"""The run folder: the one place that names every file a run (or a cross-validation run) writes.

A run folder is what ``train.py`` makes for a run, a sweep for a trial, a
cross-validation run for each fold; every tool that reads runs finds their files
through :class:`RunFolder`.
"""

from __future__ import annotations

from pathlib import Path

from sweeplab.config.trust import check_stored_config_file
from sweeplab.errors import UserInputError

HYDRA_DIR = ".hydra"
CONFIG_FILE = f"{HYDRA_DIR}/config.yaml"  # the resolved config the run trained with
OVERRIDES_FILE = f"{HYDRA_DIR}/overrides.yaml"  # the command-line overrides
HYDRA_FILE = f"{HYDRA_DIR}/hydra.yaml"  # Hydra's settings, with the config group choices
RESULTS_FILE = "results.json"  # sweeplab.runs.results.RunResults
ERROR_FILE = "error.txt"  # the traceback of a run that failed
RECORD_FILE = "run.json"  # where the run came from: sweeplab.runs.provenance.RunProvenance
ENVIRONMENT_FILE = "environment.txt"  # the installed packages, as pip freeze lists them
PATCH_FILE = "code.patch"  # the uncommitted changes to the code, when there are any
FINGERPRINT_CACHE_DIR = "cache/fingerprints"  # below paths.output_dir: the data fingerprints of unchanged files
LOG_FILE = "train.log"
LOCK_FILE = ".lock"  # the one process writing the folder: sweeplab.runs.start
MODEL_SUMMARY_FILE = "model_summary.txt"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = f"{CHECKPOINT_DIR}/best.ckpt"  # lowest validation loss
LAST_CHECKPOINT = f"{CHECKPOINT_DIR}/last.ckpt"  # the latest epoch: what resume=true continues from
CURVES_PNG, CONFUSION_PNG, MISCLASSIFIED_PNG = "curves.png", "confusion.png", "misclassified.png"
KERNELS_PNG, FEATURE_MAPS_PNG, FIXED_KERNELS_PNG = (
    "kernels.png",
    "feature_maps.png",
    "fixed_kernels.png",
)  # visualize.py
LR_FIND_PNG = "lr_find.png"  # train.py lr_find=true
MODEL_EXPORTS = {"onnx": "model.onnx", "torchscript": "model.pt"}  # predict.py --export
# a cross-validation run: one run folder per fold below it, and its report
CV_REPORT_JSON, CV_REPORT_MD, CV_FOLDS_CSV, CV_FOLDS_JSON, CV_PLOT_PNG = (
    "cv_report.json",
    "cv_report.md",
    "cv_folds.csv",
    "cv_folds.json",
    "cv_report.png",
)
REFIT_DIR = "refit"


class RunFolder:
    """Paths of the files of the run in ``path`` (``RunFolder(p).results`` is ``p/results.json``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config, self.overrides, self.hydra = (
            self.path / name for name in (CONFIG_FILE, OVERRIDES_FILE, HYDRA_FILE)
        )
        self.results, self.error, self.cv_report = (
            self.path / name for name in (RESULTS_FILE, ERROR_FILE, CV_REPORT_JSON)
        )
        self.record, self.environment, self.patch = (
            self.path / name for name in (RECORD_FILE, ENVIRONMENT_FILE, PATCH_FILE)
        )
        self.checkpoints = self.path / CHECKPOINT_DIR
        self.best_checkpoint, self.last_checkpoint = self.path / BEST_CHECKPOINT, self.path / LAST_CHECKPOINT

    def __truediv__(self, name: str) -> Path:
        return self.path / name


def require_run_config(run_dir: str | Path) -> Path:
    """``RUN_DIR/.hydra/config.yaml``, or a one-line error saying why there is none or why it is not built
    (a target sweeplab does not trust, an interpolation: :mod:`sweeplab.config.trust`)."""
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise UserInputError(f"run folder {str(run_dir)!r} does not exist")
    if not folder.config.is_file():
        raise UserInputError(f"{str(run_dir)!r} has no {CONFIG_FILE}: not a run folder written by train.py")
    check_stored_config_file(folder.config)  # data, not code: its targets are checked before anything is built
    return folder.config

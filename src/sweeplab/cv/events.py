"""The CV run in TensorBoard: its folds are runs below it; the run itself holds the fold scores.

``tensorboard --logdir <cv run>`` shows ``fold_0``, ``fold_1``, ... (and ``refit``)
as runs of their own, grouped under the CV run's folder, plus the run itself with
``cv/val_acc`` and ``cv/val_loss`` per fold and the CV means in the HParams tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from sweeplab.runs.build import build_logger


def log_cv_summary(cfg: DictConfig, run_dir: Path, report: dict[str, Any]) -> None:
    """Log the fold scores and the CV estimate, when the run logs to TensorBoard."""
    logger = build_logger(cfg, run_dir)
    if not isinstance(logger, TensorBoardLogger):
        return
    for record in report["fold_results"]:
        if record["status"] == "completed":
            logger.log_metrics({"cv/val_acc": record["val_acc"], "cv/val_loss": record["val_loss"]}, step=record["index"])
    metrics = {f"hp/cv_{name}_{stat}": float(summary[stat])
               for name, summary in report["summary"].items() for stat in ("mean", "std") if summary.get(stat) is not None}
    refit = report.get("refit") or {}
    if refit.get("test_acc") is not None:
        metrics["hp/refit_test_acc"] = float(refit["test_acc"])
    hparams = {key: (value if isinstance(value, (int, float, str, bool)) else str(value))
               for key, value in report["hparams"].items()}
    hparams["status"] = report["status"]
    logger.log_hyperparams(hparams, metrics=metrics)
    logger.finalize("success")

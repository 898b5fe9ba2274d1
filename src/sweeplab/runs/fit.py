"""The one path that trains a model: train.py, sweeps and cross-validation all call :func:`fit`."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.model_summary import ModelSummary
from omegaconf import DictConfig

from sweeplab.config.validate import validate_config
from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.errors import TrainingDiverged
from sweeplab.runs.build import build_datamodule, build_module, build_trainer
from sweeplab.runs.checkpoints import check_checkpoint_fits, resume_checkpoint
from sweeplab.runs.files import write_json_atomic, write_text_atomic
from sweeplab.runs.hparams import flat_hparams
from sweeplab.runs.provenance import git_commit
from sweeplab.reports.run_plots import write_run_plots
from sweeplab.training.module import ClassifierModule

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
HPARAM_METRICS = ("test_acc", "test_loss", "best_val_acc", "best_val_loss", "best_epoch", "epochs_run", "duration_s")


def fit(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    split: tuple[Sequence[int], Sequence[int]] | None = None,
    datamodule: InMemoryDataModule | None = None,
    evaluate_test: bool | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` in ``run_dir``, test the best checkpoint, and write ``results.json``.

    Args:
        cfg: a composed config (``conf/train.yaml``).
        run_dir: the run's folder; checkpoints, logs and results go inside.
        callbacks: extra Lightning callbacks (a sweep's pruning callback, say).
        split: explicit (train, validation) indices into the training pool, for a fold.
        datamodule: a data module already set up, to share loaded data between runs.
        evaluate_test: test the best checkpoint after training (default ``cfg.evaluate_test``).

    Returns the results dict. Bad input raises :class:`~sweeplab.errors.UserInputError`
    before any training; a diverged loss is recorded with ``status: "diverged"``; any
    other failure is recorded as ``"failed"`` (with ``error.txt``) and re-raised.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    validate_config(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = datamodule or build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if split is not None:
        datamodule.use_split(*split)
    module = build_module(cfg, datamodule)
    resume_from = resume_checkpoint(cfg, run_dir)
    if resume_from is not None:
        check_checkpoint_fits(resume_from, module)
    trainer = build_trainer(cfg, run_dir, callbacks)
    _write_model_summary(module, run_dir)
    evaluate_test = cfg.get("evaluate_test", True) if evaluate_test is None else evaluate_test

    status, error, test_metrics = "completed", None, {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        if trainer.interrupted:
            status = "interrupted"
        else:
            test_metrics = _evaluate_best(trainer, module, datamodule, evaluate_test)
    except TrainingDiverged as diverged:
        status, error = "diverged", str(diverged)
        log.error("run diverged: %s", diverged)
    except BaseException as failure:
        status = "interrupted" if isinstance(failure, (KeyboardInterrupt, SystemExit)) else "failed"
        error = f"{type(failure).__name__}: {failure}"
        write_text_atomic(run_dir / "error.txt", traceback.format_exc())
        _finish(cfg, run_dir, trainer, module, datamodule, status, error, test_metrics, started)
        raise
    return _finish(cfg, run_dir, trainer, module, datamodule, status, error, test_metrics, started)


def _evaluate_best(trainer: pl.Trainer, module: ClassifierModule, datamodule, test: bool) -> dict[str, float]:
    """Validate (for the per-class confusion) and optionally test the best checkpoint.

    The best checkpoint is the one with the lowest validation loss; the final
    weights stand in when there is none (``fast_dev_run``, no checkpoint callback).
    """
    checkpoint = trainer.checkpoint_callback
    best = (checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else "") or None
    trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    if not test:
        return {}
    metrics = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    return {key: float(value) for key, value in (metrics[0] if metrics else {}).items()}


def _write_model_summary(module: ClassifierModule, run_dir: Path) -> None:
    summary = str(ModelSummary(module, max_depth=-1))
    write_text_atomic(run_dir / "model_summary.txt", summary + "\n")
    log.info("model: %s, %s parameters\n%s", type(module.model).__name__, f"{module.num_params:,}", summary)


def _best_epoch(history: list[dict]) -> dict | None:
    scored = [row for row in history if row.get("val_loss") is not None]
    return min(scored, key=lambda row: row["val_loss"]) if scored else None


def collect_results(cfg, trainer, module, datamodule, status, error, test_metrics, duration_s) -> dict[str, Any]:
    """The machine-readable record of a run (``results.json``)."""
    history = module.history
    best = _best_epoch(history)
    early = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
    val_accs = [row["val_acc"] for row in history if row.get("val_acc") is not None]
    confusion = module.confusion.get("test")
    val_confusion = module.confusion.get("val")
    return {
        "status": status,
        "error": error,
        "dataset": datamodule.name,
        "model": type(module.model).__name__,
        "test_acc": test_metrics.get("test_acc"),
        "test_loss": test_metrics.get("test_loss"),
        "best_val_acc": max(val_accs) if val_accs else None,
        "best_val_loss": best["val_loss"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "val_acc_at_best_epoch": best.get("val_acc") if best else None,
        "epochs_run": len(history),
        "stopped_early": bool(early is not None and early.stopped_epoch > 0),
        "duration_s": round(duration_s, 3),
        "num_params": module.num_params,
        "seed": int(cfg.seed),
        "git_commit": git_commit(),
        "train_size": len(datamodule.train_indices),
        "val_size": len(datamodule.val_indices),
        "test_size": int(confusion.sum()) if confusion is not None else None,
        "classes": datamodule.classes,
        "test_confusion": confusion.tolist() if confusion is not None else None,
        "val_confusion": val_confusion.tolist() if val_confusion is not None else None,  # best checkpoint
        "history": history,
        "hparams": flat_hparams(cfg),
    }


def _finish(cfg, run_dir, trainer, module, datamodule, status, error, test_metrics, started) -> dict[str, Any]:
    results = collect_results(cfg, trainer, module, datamodule, status, error, test_metrics, time.perf_counter() - started)
    if trainer.is_global_zero:
        write_json_atomic(run_dir / RESULTS_FILE, results)
        write_run_plots(run_dir, results, module, trainer)
        _log_hparams_with_metrics(trainer, results)
    log.info("%s: %s", status, {k: results[k] for k in ("test_acc", "best_val_acc", "best_epoch", "epochs_run", "duration_s")})
    return results


def _log_hparams_with_metrics(trainer: pl.Trainer, results: dict[str, Any]) -> None:
    """Fill TensorBoard's HParams tab with this run's hyperparameters and final metrics."""
    tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
    if tensorboard is None:
        return
    metrics = {f"hp/{key}": float(results[key]) for key in HPARAM_METRICS if results.get(key) is not None}
    hparams = {key: (value if isinstance(value, (int, float, str, bool)) else str(value)) for key, value in results["hparams"].items()}
    hparams["status"] = results["status"]
    tensorboard.log_hyperparams(hparams, metrics=metrics)
    tensorboard.finalize("success")

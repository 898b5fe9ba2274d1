"""k-fold cross-validation: one ``fit`` per fold on one shared data module, then a report.

``python train.py cv.folds=5`` splits the training pool (never the test set) into
stratified folds, trains one model per fold from scratch (early stopping on that
fold) in ``<run>/fold_N/``, and writes ``cv_report.{json,md}``, ``cv_folds.csv``,
``cv_folds.json`` (the folds' indices) and ``cv_report.png`` into the run folder.
The report is rewritten after every fold, so a stopped or pruned run keeps what
it did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from sweeplab.cluster import current_job
from sweeplab.cv.folds import (
    Fold,
    check_cv_settings,
    check_folds_fit_classes,
    split_seeds,
    stratified_folds,
    write_folds,
)
from sweeplab.cv.refit import refit_epochs, refit_on_pool
from sweeplab.cv.report import completed, fold_record, interval_text, per_class_accuracy, summarize, write_cv_report
from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.metrics import BEST_VAL_ACC, BEST_VAL_LOSS, VAL_ACC, VAL_LOSS
from sweeplab.runs.build import build_datamodule, build_logger
from sweeplab.runs.fit import fit
from sweeplab.runs.folder import CV_FOLDS_JSON, CV_REPORT_MD, RunFolder
from sweeplab.runs.hparams import flat_hparams, log_hparams
from sweeplab.runs.provenance import CV, Parent, RunProvenance, end_record, start_record
from sweeplab.runs.results import COMPLETED, FAILED, INTERRUPTED, RunResults
from sweeplab.stats import percent
from sweeplab.stops import stop_signal_of

log = logging.getLogger(__name__)

FoldCallback = Callable[[int, float], None]
# a fold is scored by its best checkpoint's validation accuracy or loss; the names single runs give those
FOLD_METRICS = {
    VAL_ACC.name: VAL_ACC.name,
    VAL_LOSS.name: VAL_LOSS.name,
    BEST_VAL_ACC.name: VAL_ACC.name,
    BEST_VAL_LOSS.name: VAL_LOSS.name,
}


def fold_metric(metric: str, key: str = "metric") -> str:
    """The fold score called ``metric`` (``val_acc``, ``val_loss`` or their ``best_`` names)."""
    if metric not in FOLD_METRICS:
        raise ConfigError(key, metric, f"a fold is scored by one of {', '.join(FOLD_METRICS)}")
    return FOLD_METRICS[metric]


def load_pool(cfg: DictConfig) -> InMemoryDataModule:
    """The data module every fold shares: loaded and normalized once."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def cross_validate(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    on_fold_end: FoldCallback | None = None,
    metric: str = "val_acc",
    on_start: Callable[[], None] | None = None,
    parent: Parent | None = None,
) -> dict[str, Any]:
    """Cross-validate ``cfg`` in ``run_dir``; return the report (``status`` "completed" when every fold was).

    Args:
        cfg: a composed config with ``cv.folds >= 2``.
        run_dir: the CV run's folder; fold ``i`` trains in ``run_dir/fold_i``.
        on_fold_end: called as ``on_fold_end(fold_index, score)`` after each completed
            fold, with the fold's ``metric``; it may raise to stop (a sweep's pruning):
            the report is written with status "stopped" and the exception propagates.
        metric: the score passed to ``on_fold_end``.
        on_start: called once the folds are planned, before anything is written (see ``fit``).
        parent: what the CV run is part of (a sweep's trial, a multirun's job), for its ``run.json``.

    Bad cv.* values raise :class:`ConfigError` before any training.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    check_cv_settings(cfg.cv)
    metric = fold_metric(metric)
    datamodule = load_pool(cfg)
    labels = datamodule.pool_labels.numpy()
    check_folds_fit_classes(cfg.cv.folds, labels, datamodule.classes)
    folds = stratified_folds(labels, cfg.cv.folds, cfg.cv.repeats, cfg.cv.split_seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()
    write_folds(run_dir / CV_FOLDS_JSON, folds, len(labels))
    cv_run = _CVRun(cfg, run_dir, datamodule, folds, started, start_record(cfg, run_dir, datamodule, parent))

    for fold in folds:
        log.info("cross-validation: %s (repeat %d, fold %d of %d)", fold.name, fold.repeat, fold.fold + 1, cfg.cv.folds)
        try:
            results = finished_before_requeue(run_dir / fold.name) or fit(
                cfg,
                run_dir / fold.name,
                split=(fold.train_indices, fold.val_indices),
                datamodule=datamodule,
                evaluate_test=False,
                parent=Parent(CV, str(run_dir), fold.name),
            )
        except UserInputError:
            raise
        except BaseException as failure:
            cv_run.finish(_failure_status(failure), f"{fold.name}: {_describe(failure)}")
            raise
        cv_run.records.append(fold_record(fold, results))
        if results.status != COMPLETED:
            return cv_run.finish(results.status, f"{fold.name}: {results.error}")
        cv_run.write("running", None, plot=False)
        if on_fold_end is not None:
            try:
                on_fold_end(fold.index, cv_run.records[-1][metric])
            except BaseException as stop:
                cv_run.finish("stopped", f"stopped after {fold.name} by {_describe(stop)}")
                raise
    refit = None
    if cfg.cv.get("refit"):
        try:
            refit = refit_on_pool(cfg, run_dir, datamodule, refit_epochs([r["best_epoch"] for r in cv_run.records]))
        except BaseException as failure:
            cv_run.finish(_failure_status(failure), f"refit: {_describe(failure)}")
            raise
    return cv_run.finish(COMPLETED, None, refit)


def finished_before_requeue(fold_dir: Path) -> RunResults | None:
    """In a SLURM job started again (a requeue), the results of a fold its earlier attempt completed: the
    fold is not trained again (the one it was in resumes from its last checkpoint, :func:`resume_if_requeued`)."""
    job = current_job()
    if job is None or not job.requeued:
        return None
    try:
        results = RunResults.read(RunFolder(fold_dir).results)
    except UserInputError:
        return None
    if results.status != COMPLETED:
        return None
    log.info("cross-validation: %s was completed before SLURM requeued job %s; kept", fold_dir.name, job.id)
    return results


def _failure_status(failure: BaseException) -> str:
    return INTERRUPTED if isinstance(failure, (KeyboardInterrupt, SystemExit)) else FAILED


def _describe(exception: BaseException) -> str:
    if isinstance(exception, (KeyboardInterrupt, SystemExit)) and (stop := stop_signal_of(exception)) is not None:
        return f"stopped by {stop.name}"  # Lightning ends a stop with SystemExit(1): say which signal it was
    return f"{type(exception).__name__}: {exception}" if str(exception) else type(exception).__name__


class _CVRun:
    """What a CV run has done so far, and how it is reported."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        datamodule: InMemoryDataModule,
        folds: list[Fold],
        started: float,
        record: RunProvenance,
    ):
        self.cfg, self.run_dir, self.datamodule, self.folds, self.started = cfg, run_dir, datamodule, folds, started
        self.record = record
        self.records: list[dict[str, Any]] = []

    def report(self, status: str, error: str | None, refit: dict | None = None) -> dict[str, Any]:
        summary = summarize(self.records)
        val_acc = summary.get("val_acc", {}).get("mean")
        return {
            "kind": "cross_validation",
            "status": status,
            "error": error,
            "dataset": self.datamodule.name,
            "model": self._model_name(),
            "folds": int(self.cfg.cv.folds),
            "repeats": int(self.cfg.cv.repeats),
            "split_seeds": split_seeds(int(self.cfg.cv.split_seed), int(self.cfg.cv.repeats)),
            "folds_planned": len(self.folds),
            "folds_completed": len(completed(self.records)),
            "pool_size": len(self.datamodule.pool_labels),
            "classes": list(self.datamodule.classes),
            "val_acc": val_acc,  # the CV estimate: mean over folds of the best checkpoint's val_acc
            "val_loss": summary.get("val_loss", {}).get("mean"),
            "best_val_acc": val_acc,  # the same, under the key single runs report (multirun return value)
            "test_acc": (refit or {}).get("test_acc"),  # only from the refit; the folds never see the test set
            "summary": summary,
            "per_class": per_class_accuracy(self.records, self.datamodule.classes),
            "refit": refit,
            "duration_s": round(time.perf_counter() - self.started, 3),
            "seed": int(self.cfg.seed),
            "git_commit": self.record.code_version,
            "hparams": flat_hparams(self.cfg),
            "fold_results": self.records,
        }

    def _model_name(self) -> str:
        for record in self.records:
            if record.get("model"):
                return record["model"]
        return str(self.cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]

    def write(self, status: str, error: str | None, refit: dict | None = None, *, plot: bool = True) -> dict[str, Any]:
        report = self.report(status, error, refit)
        write_cv_report(self.run_dir, report, plot=plot)
        return report

    def finish(self, status: str, error: str | None, refit: dict | None = None) -> dict[str, Any]:
        report = self.write(status, error, refit)
        end_record(self.run_dir, self.record)
        self.log_to_tensorboard(report)
        acc = report["summary"].get("val_acc") or {}
        estimate = f"val_acc {acc['mean']:.4f}" if acc.get("mean") is not None else "no estimate"
        if acc.get("ci_low") is not None:
            estimate += (
                f", {percent(acc['confidence'])} interval {interval_text(acc)}"
                f" (corrected {interval_text(acc, 'corrected_')})"
            )
        log.info(
            "cross-validation %s: %s over %d of %d folds; report: %s",
            status,
            estimate,
            report["folds_completed"],
            report["folds_planned"],
            RunFolder(self.run_dir) / CV_REPORT_MD,
        )
        return report

    def log_to_tensorboard(self, report: dict[str, Any]) -> None:
        """The fold scores as ``cv/val_acc`` per fold, the CV estimate in the HParams tab.

        ``tensorboard --logdir <cv run>`` shows ``fold_0``, ``fold_1``, ... (and ``refit``) as runs
        of their own, below the CV run itself.
        """
        logger = build_logger(self.cfg, self.run_dir)
        if not isinstance(logger, TensorBoardLogger):
            return
        for record in completed(report["fold_results"]):
            logger.log_metrics(
                {"cv/val_acc": record["val_acc"], "cv/val_loss": record["val_loss"]}, step=record["index"]
            )
        metrics = {
            f"cv_{name}_{stat}": summary.get(stat)
            for name, summary in report["summary"].items()
            for stat in ("mean", "std")
        }
        metrics["test_acc"] = (report.get("refit") or {}).get("test_acc")
        log_hparams(logger, report["hparams"], metrics, report["status"])

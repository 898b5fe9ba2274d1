"""The one path that trains a model: train.py, sweeps and cross-validation all call :func:`fit`."""

from __future__ import annotations

import logging
import signal
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.model_summary import ModelSummary
from omegaconf import DictConfig

from sweeplab.cluster import current_job_record
from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.errors import RunStopped, TrainingDiverged, UserInputError
from sweeplab.files import write_text_atomic
from sweeplab.metrics import HEADLINE, VAL_ACC, VAL_LOSS
from sweeplab.redact import redact_text
from sweeplab.runs.build import build_datamodule, build_module, build_trainer
from sweeplab.runs.checkpoints import Resume, check_checkpoint_fits, check_resume, epochs_trained, resume_if_requeued
from sweeplab.runs.folder import MODEL_SUMMARY_FILE, RunFolder
from sweeplab.runs.hparams import flat_hparams, log_hparams
from sweeplab.runs.provenance import CodeState, Parent, RunProvenance, end_record, start_record
from sweeplab.runs.results import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RunResults, best_epoch_row
from sweeplab.runs.start import holding_run_folder
from sweeplab.stops import received, stop_signal_of
from sweeplab.training.module import ClassifierModule

log = logging.getLogger(__name__)


@holding_run_folder  # one process writes a run folder (sweeplab.runs.start)
def fit(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    split: tuple[Collection[int], Collection[int]] | None = None,  # lists or numpy arrays of indices
    datamodule: InMemoryDataModule | None = None,
    evaluate_test: bool | None = None,
    on_start: Callable[[], None] | None = None,
    parent: Parent | None = None,
    code: CodeState | None = None,
    plots: bool = True,
) -> RunResults:
    """Train ``cfg`` in ``run_dir``, test the best checkpoint, and write ``results.json``.

    Args:
        cfg: a composed config (``conf/train.yaml``), checked by :func:`sweeplab.runs.checks.check_config`.
        run_dir: the run's folder; checkpoints, logs and results go inside.
        callbacks: extra Lightning callbacks (a sweep's pruning callback, say).
        split: explicit (train, validation) indices into the training pool, for a fold.
        datamodule: a data module already set up, to share loaded data between runs.
        evaluate_test: test the best checkpoint after training (default ``cfg.evaluate_test``).
        on_start: called once the data, model and trainer are built, before anything is written
            into ``run_dir`` (train.py records the run's config then: :mod:`sweeplab.runs.start`).
        parent: what the run is part of (a multirun, a sweep's trial, a cross-validation fold), for its
            record (``run.json``: :mod:`sweeplab.runs.provenance`).
        code: the code's state (git commit and changes) read once for many runs: a sweep's trials share it.
        plots: draw the run's plots as it trains (:class:`~sweeplab.reports.run_plots.RunPlots`); a sweep's
            trial may leave them to the study's end (``sweep.trial_plots``).

    Returns the run's :class:`RunResults`. Bad input raises :class:`~sweeplab.errors.UserInputError`
    before any training; a diverged loss is recorded with ``status: "diverged"``; any
    other failure is recorded as ``"failed"`` (with ``error.txt``) and re-raised.
    """
    folder = RunFolder(run_dir)
    started = time.perf_counter()
    cfg = resume_if_requeued(cfg, folder.path)  # a SLURM job started again goes on from its last checkpoint
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = datamodule or build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if split is not None:
        datamodule.use_split(*split)
    module = build_module(cfg, datamodule)
    resume = check_resume(cfg, folder.path)
    resume_from = resume.path if resume is not None else None
    resumed_from_epoch = epochs_trained(resume.checkpoint) if resume is not None else None
    if resume is not None:
        check_checkpoint_fits(resume.checkpoint, resume.path, module)
        _carry_over(resume, module)
    trainer = build_trainer(cfg, folder.path, callbacks, plots=plots)
    folder.path.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()
    record = start_record(cfg, folder.path, datamodule, parent, code) if trainer.is_global_zero else None
    _write_model_summary(module, folder, show=bool(cfg.get("verbose", False)))
    evaluate_test = cfg.get("evaluate_test", True) if evaluate_test is None else evaluate_test

    status, error, test_metrics = COMPLETED, None, {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        if trainer.interrupted:
            status = INTERRUPTED
        else:
            test_metrics = _evaluate_best(trainer, module, datamodule, evaluate_test)
    except TrainingDiverged as diverged:
        status, error = DIVERGED, str(diverged)
        log.error("run diverged: %s", diverged)
    except BaseException as failure:
        status, error, failed = _how_it_ended(trainer, failure)
        try:  # recording the end must not hide why it ended (a full disk fails both)
            if failed:
                write_text_atomic(folder.error, redact_text(traceback.format_exc()))
            _finish(
                cfg,
                folder,
                trainer,
                module,
                datamodule,
                status,
                error,
                test_metrics,
                started,
                record,
                resumed_from_epoch,
            )
        except OSError as unrecorded:
            log.error("could not record the %s run in %s: %s", status, folder.path, unrecorded)
        raise
    return _finish(
        cfg, folder, trainer, module, datamodule, status, error, test_metrics, started, record, resumed_from_epoch
    )


def _how_it_ended(trainer: pl.Trainer, failure: BaseException) -> tuple[str, str, bool]:
    """``(status, error, failed)`` of a run that raised ``failure``; only a failure keeps its traceback (error.txt),
    not a stop on purpose (a sweep's pruner) or by a signal."""
    if isinstance(failure, RunStopped):
        return failure.status, str(failure), False
    if (by_signal := _stop_signal(trainer, failure)) is not None:
        return INTERRUPTED, f"stopped by {by_signal.name}", False
    status = INTERRUPTED if isinstance(failure, (KeyboardInterrupt, SystemExit)) else FAILED
    return status, f"{type(failure).__name__}: {failure}", True


def _stop_signal(trainer: pl.Trainer, failure: BaseException | None = None) -> signal.Signals | None:
    """The stop signal that ended the run: ours (:mod:`sweeplab.stops`), or a SIGTERM Lightning handled alone
    (a cluster's job, where no sweeplab command installed a handler)."""
    found = stop_signal_of(failure) if failure is not None else received()
    return found or (signal.SIGTERM if trainer.received_sigterm else None)


def _carry_over(resume: Resume, module: ClassifierModule) -> None:
    """Allowed config changes: recorded in the run, and written over the stored optimizer and scheduler settings."""
    if not resume.changes:
        return
    epoch = epochs_trained(resume.checkpoint) + 1  # the first epoch trained with them
    module.config_changes.append({"epoch": epoch, "changes": {k: list(v) for k, v in resume.changes.items()}})
    module.stored_state_updates = {group: resume.group_changes(group) for group in ("optimizer", "scheduler")}
    log.warning(
        "resuming %s with changed config from epoch %d: %s",
        resume.path,
        epoch,
        ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in resume.changes.items()),
    )


def _evaluate_best(trainer: pl.Trainer, module: ClassifierModule, datamodule, test: bool) -> dict[str, float]:
    """Validate (for the per-class confusion) and optionally test the best checkpoint.

    The best checkpoint is the checkpoint callback's; the final weights stand in when
    there is none (``fast_dev_run``, no checkpoint callback).
    """
    checkpoint = trainer.checkpoint_callback
    best = (checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else "") or None
    if best is not None and _best_is_final(trainer, module):
        best = None  # the weights in memory are the best checkpoint's, and its validation already ran
    else:
        trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    if not test:
        return {}
    metrics = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    return {key: float(value) for key, value in (metrics[0] if metrics else {}).items()}


def _best_is_final(trainer: pl.Trainer, module: ClassifierModule) -> bool:
    """Whether the best checkpoint holds the weights training ended with, validated at the end of the last epoch
    (``val_confusion`` is that validation's): then neither reading it back nor validating it again tells more.

    Only for validations at epoch ends (a mid-epoch one would be a later validation than the last row's).
    """
    history = module.history
    if not history or "val" not in module.confusion or trainer.val_check_interval != 1.0:
        return False
    best = best_row(trainer, history)
    return best is not None and best["epoch"] == history[-1]["epoch"] == trainer.current_epoch


def _write_model_summary(module: ClassifierModule, folder: RunFolder, show: bool) -> None:
    summary = str(ModelSummary(module, max_depth=-1))
    write_text_atomic(folder / MODEL_SUMMARY_FILE, summary + "\n")
    log.info(
        "model: %s, %s parameters (layers: %s)%s",
        type(module.model).__name__,
        f"{module.num_params:,}",
        folder / MODEL_SUMMARY_FILE,
        f"\n{summary}" if show else "",
    )


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _holds_completed_results(folder: RunFolder) -> bool:
    """Whether the folder already holds the results of a completed run (only a completed run replaces them)."""
    try:
        return RunResults.read(folder.results).status == COMPLETED
    except UserInputError:
        return False


def best_row(trainer: pl.Trainer, history: list[dict]) -> dict | None:
    """The history row of the epoch the checkpoint callback keeps as the best."""
    checkpoint = trainer.checkpoint_callback
    if isinstance(checkpoint, ModelCheckpoint) and checkpoint.monitor:
        return best_epoch_row(history, checkpoint.monitor, checkpoint.mode)
    return best_epoch_row(history)


def collect_results(
    cfg,
    trainer,
    module,
    datamodule,
    status,
    error,
    test_metrics,
    duration_s,
    code_version: str | None,
    resumed_from_epoch: int | None = None,
) -> RunResults:
    """The machine-readable record of a run (``results.json``)."""
    history = module.history
    best = best_row(trainer, history)
    early = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
    val_accs = [row[VAL_ACC.name] for row in history if row.get(VAL_ACC.name) is not None]
    confusion, val_confusion = module.confusion.get("test"), module.confusion.get("val")
    return RunResults(
        status=status,
        error=error,
        dataset=datamodule.name,
        model=type(module.model).__name__,
        test_acc=test_metrics.get("test_acc"),
        test_loss=test_metrics.get("test_loss"),
        best_val_acc=max(val_accs) if val_accs else None,
        best_val_loss=best.get(VAL_LOSS.name) if best else None,
        best_epoch=best["epoch"] if best else None,
        val_acc_at_best_epoch=best.get(VAL_ACC.name) if best else None,
        epochs_run=len(history),
        stopped_early=bool(early is not None and early.stopped_epoch > 0),
        duration_s=round(duration_s, 3),
        num_params=module.num_params,
        seed=int(cfg.seed),
        git_commit=code_version,
        job=current_job_record(),
        train_size=len(datamodule.train_indices),
        val_size=len(datamodule.val_indices),
        test_size=int(confusion.sum()) if confusion is not None else None,
        classes=list(datamodule.classes),
        test_confusion=confusion.tolist() if confusion is not None else None,
        val_confusion=val_confusion.tolist() if val_confusion is not None else None,
        history=history,
        hparams=flat_hparams(cfg),
        config_changes=list(module.config_changes),
        resumed_from_epoch=resumed_from_epoch,
        stop_signal=stop.name if status == INTERRUPTED and (stop := _stop_signal(trainer)) is not None else None,
    )


def _finish(
    cfg,
    folder: RunFolder,
    trainer,
    module,
    datamodule,
    status,
    error,
    test_metrics,
    started,
    record: RunProvenance | None,
    resumed_from_epoch: int | None = None,
) -> RunResults:
    results = collect_results(
        cfg,
        trainer,
        module,
        datamodule,
        status,
        error,
        test_metrics,
        time.perf_counter() - started,
        record.code_version if record else None,
        resumed_from_epoch,
    )
    if trainer.is_global_zero:
        if status == COMPLETED or not _holds_completed_results(folder):
            results.write(folder.results)
            if status == COMPLETED:  # an earlier attempt's traceback (a resumed run's) no longer applies
                folder.error.unlink(missing_ok=True)
        else:
            log.warning("kept the completed %s: this %s attempt is recorded in the log only", folder.results, status)
        if record is not None:  # after results.json: the file a full disk must not cost
            end_record(folder.path, record)
        log_hparams(trainer.logger, results.hparams, {key: getattr(results, key) for key in HEADLINE}, status)
    log.info(
        "%s: test_acc %s, best_val_acc %s (epoch %s of %s), %.1f s",
        status,
        _figure(results.test_acc),
        _figure(results.best_val_acc),
        results.best_epoch,
        results.epochs_run,
        results.duration_s,
    )
    return results

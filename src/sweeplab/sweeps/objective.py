"""What one trial does: sample, compose, train through :func:`sweeplab.runs.fit.fit`, score.

A trial is an ordinary run in ``<sweep dir>/trial_NNNN/`` (checkpoints, TensorBoard
events with hparams, ``results.json``, ``.hydra/``). Its value is its best epoch's
``sweep.metric`` (the highest ``val_acc``, the lowest ``val_loss``): the number
``results.json`` reports as ``best_val_acc`` / ``best_val_loss``, and the one a
re-run of ``best.yaml`` reproduces. Each epoch's value goes to the pruner from
inside the training loop (:class:`~sweeplab.sweeps.pruning.EpochPruningCallback`).
A trade-off study's trial returns one value per objective and is never pruned
(:mod:`sweeplab.sweeps.objectives`); its ``sweep.constraints`` are stored with it
(``Trial.set_constraint``). Its plots, when it draws them, become Optuna artifacts (:mod:`sweeplab.sweeps.artifacts`).

A retried trial (its worker died, or it was interrupted: :func:`sweeplab.sweeps.study.queue_retry`)
goes on in its original's folder from its ``last.ckpt``, with the original's pruning reports and
seed, and ends as the original would have (``resumed_from_epoch`` in ``results.json``). With
``sweep.trial_timeout_min`` a trial that trains longer is stopped (:mod:`sweeplab.sweeps.time_limit`)
and stored as pruned with status ``timed_out``. The trials of one worker share their data modules
(:class:`DataModules`) and the code's git state: read once, not once per trial; Hydra composes
their configs once per set of config-group choices (:class:`~sweeplab.config.compose.TrainConfigs`).
A trial draws its plots only with ``sweep.trial_plots=all``; with ``best`` (the default) the study's
end draws the best trial's (:func:`sweeplab.sweeps.session.draw_best_trial_plots`).
"""

from __future__ import annotations

import json
import logging
import traceback
import warnings
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback

from sweeplab.config.compose import TrainConfigs, without_hydra_node
from sweeplab.cv.objective import cv_objective
from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.errors import UserInputError
from sweeplab.files import write_text_atomic
from sweeplab.metrics import EPOCH_S, HEADLINE
from sweeplab.metrics import metric as metric_named
from sweeplab.redact import redact_text
from sweeplab.runs.build import build_datamodule
from sweeplab.runs.config_record import record_run_config
from sweeplab.runs.fit import fit
from sweeplab.runs.folder import RunFolder
from sweeplab.runs.provenance import SWEEP, CodeState, Parent, code_directory, code_state
from sweeplab.runs.results import COMPLETED, FAILED, INTERRUPTED, PRUNED, TIMED_OUT, RunResults
from sweeplab.runs.start import run_folder_lock
from sweeplab.sweeps.artifacts import upload_plots
from sweeplab.sweeps.liveness import this_cluster_job, this_worker
from sweeplab.sweeps.objectives import run_metric
from sweeplab.sweeps.plan import SweepPlan
from sweeplab.sweeps.pruning import EpochPruningCallback
from sweeplab.sweeps.settings import ALL_PLOTS
from sweeplab.sweeps.space import overrides_for
from sweeplab.sweeps.study import queue_retry
from sweeplab.sweeps.time_limit import RunTimedOut, TimeLimit
from sweeplab.sweeps.trials import SURPLUS_ATTR, taken_before

log = logging.getLogger(__name__)

RESUMED_FROM_TRIAL = "resumed_from_trial"  # a retried trial's user attributes: the trial it goes on from,
RESUMED_FROM_EPOCH = "resumed_from_epoch"  # and the epochs that trial's last checkpoint held


class TrialFailed(Exception):
    """A trial that could not produce a value; Optuna records it as failed and the sweep goes on
    (its traceback is in the trial's error.txt)."""

    one_line_in_logs = True


class SurplusTrial(Exception):
    """A trial started after other workers had taken the last of the ``n_trials`` places."""

    one_line_in_logs = True


class DataModules:
    """The data modules of one worker process, set up once and shared by its trials, keyed by the data config.

    Trials that differ only in model or optimizer train on the same tensors: reading, decoding,
    standardizing and fingerprinting them once per worker (not once per trial) is most of a small
    trial's fixed cost. A trial whose data config differs (another batch size, another augmentation)
    gets a module of its own; the number kept is bounded so a sweep over many data configs stays small.
    """

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._modules: dict[str, InMemoryDataModule] = {}

    def get(self, cfg) -> InMemoryDataModule:
        key = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True, default=str)
        module = self._modules.pop(key, None)
        if module is None:
            module = build_datamodule(cfg)
            module.prepare_data()
            module.setup("fit")
        self._modules[key] = module  # the most recently used last
        while len(self._modules) > self.keep:
            self._modules.pop(next(iter(self._modules)))
        return module


class TrialObjective:
    """The objective ``study.optimize`` calls once per trial."""

    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.data = DataModules()
        self.configs = TrainConfigs()  # Hydra composes once per set of group choices, not once per trial
        self.code: CodeState | None = None  # the code's git state, read at the first trial for all of them

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self._claim_place(trial)
        sampled = self.settings.space.sample(trial)
        overrides = [*self.plan.base_overrides, *overrides_for(sampled)]
        # a retried hold-out trial goes on where its original stopped (a cross-validated one starts again)
        retry_of = None if self.plan.cross_validates else retried_trial(trial)
        trial_dir = self.plan.trial_dir(trial.number if retry_of is None else retry_of)
        resume = False
        if retry_of is None:
            self._refuse_used_folder(trial_dir)
        else:  # a retried trial goes on in its original's folder, from its last checkpoint when it has one
            trial.set_user_attr(RESUMED_FROM_TRIAL, retry_of)
            resume = RunFolder(trial_dir).last_checkpoint.is_file()
            log.info(
                "trial %d retries trial %d in %s%s",
                trial.number,
                retry_of,
                trial_dir,
                " from its last checkpoint" if resume else " (no checkpoint: from the start)",
            )
        trial.set_user_attr("dir", str(trial_dir))
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("worker", this_worker())
        if (job := this_cluster_job()) is not None:
            trial.set_user_attr("cluster_job", job)
        log.info("trial %d: %s", trial.number, " ".join(overrides_for(sampled)))
        interrupted = False
        try:
            cfg, hydra_node = without_hydra_node(self.configs.compose(overrides))  # = compose_train_config's
            with run_folder_lock(trial_dir):  # one process writes a run folder
                record_run_config(trial_dir, cfg, hydra_node, overrides)  # the trial's own config: best.yaml's
                if resume:  # as a requeued SLURM run: only this attempt resumes
                    cfg = with_resume(cfg)
                if self.plan.cross_validates:
                    return self._cross_validated(trial, cfg, trial_dir)
                return self._held_out(trial, cfg, trial_dir)
        except optuna.TrialPruned:
            raise
        except (TrialFailed, UserInputError) as error:
            trial.set_user_attr("error", str(error))
            raise
        except (KeyboardInterrupt, SystemExit) as stop:  # Lightning turns Ctrl-C into SystemExit
            interrupted = True
            _record_interruption(trial, stop)
            raise KeyboardInterrupt(f"trial {trial.number} interrupted") from stop  # Optuna: FAIL, then stop
        except Exception as error:  # noqa: BLE001 (one broken trial must not end the study)
            reason = f"{type(error).__name__}: {error}"
            trial.set_user_attr("status", FAILED)
            trial.set_user_attr("error", reason)
            write_text_atomic(
                RunFolder(trial_dir).error, redact_text(traceback.format_exc())
            )  # also when it broke outside fit
            raise TrialFailed(reason) from error
        finally:
            if not interrupted:  # completed, pruned or failed: its plots show how it went (never raises)
                upload_plots(trial, trial_dir, self.plan.study_dir)

    def _claim_place(self, trial: optuna.Trial) -> None:
        """Give up at once when ``n_trials`` trials numbered before this one finished or are running.

        Workers stop asking for trials once the places are taken, but two workers can
        ask in the same instant; the later-numbered trial then stands back untrained.
        """
        study = trial.study
        if taken_before(study, trial.number) >= self.settings.n_trials:
            trial.set_user_attr(SURPLUS_ATTR, True)
            study.stop()
            raise SurplusTrial(f"all {self.settings.n_trials} places were taken by other workers; not trained")

    def _refuse_used_folder(self, trial_dir: Path) -> None:
        if RunFolder(trial_dir).results.exists():
            raise UserInputError(
                f"sweep.dir={self.plan.study_dir}: {trial_dir.name} already holds a run of another "
                "study; give each study its own sweep.dir"
            )

    def _held_out(self, trial: optuna.Trial, cfg, trial_dir: Path) -> float | list[float]:
        settings = self.settings
        # a trade-off study is not pruned: Optuna's pruners follow one objective
        callbacks: list[EpochPruningCallback | TimeLimit] = (
            [] if settings.multi_objective else [EpochPruningCallback(trial, monitor=settings.metric)]
        )
        if settings.trial_timeout_min:
            callbacks.append(TimeLimit(settings.trial_timeout_min))
        try:
            self.code = self.code or code_state(code_directory())
            results = fit(
                cfg,
                trial_dir,
                callbacks=callbacks,
                parent=self._parent(trial),
                datamodule=self.data.get(cfg),
                code=self.code,
                plots=settings.trial_plots == ALL_PLOTS,
            )
        except optuna.TrialPruned:  # fit recorded the run as pruned
            trial.set_user_attr("status", PRUNED)
            raise
        except RunTimedOut as stopped:  # fit recorded the run as timed out: to Optuna a trial stopped early, as pruned
            trial.set_user_attr("status", TIMED_OUT)
            trial.set_user_attr("error", str(stopped))
            raise optuna.TrialPruned(str(stopped)) from None
        _keep_results(trial, results)
        if results.status != COMPLETED:
            raise TrialFailed(f"run {results.status}: {results.error}")
        values = [_measured(trial, results, name) for name in settings.metrics]
        for constraint in settings.constraints:  # stored before the trial ends: samplers and best_trial(s) read them
            trial.set_constraint(constraint.text, constraint.violation(_measured(trial, results, constraint.metric)))
        return values if settings.multi_objective else values[0]

    def _cross_validated(self, trial: optuna.Trial, cfg, trial_dir: Path) -> float:
        return cv_objective(trial, cfg, trial_dir, self.settings.metric, parent=self._parent(trial))

    def _parent(self, trial: optuna.Trial) -> Parent:
        """The trial's place in its study, for its record (``run.json``)."""
        return Parent(SWEEP, str(self.plan.study_dir.resolve()), trial.number, study=self.settings.study_name)


def _measured(trial: optuna.Trial, results: RunResults, name: str) -> float:
    """Metric ``name`` of a completed run (a per-epoch one: its best epoch); ``num_params`` and ``epoch_s`` are
    kept as user attributes (the headline numbers already are)."""
    value = run_metric(results, name)
    per_epoch = metric_named(name).per_epoch
    if value is None:
        raise TrialFailed(
            f"no epoch logged {name}" if per_epoch or name == EPOCH_S.name else f"the run reports no {name}"
        )
    if not per_epoch and name not in HEADLINE:
        trial.set_user_attr(name, value)
    return value


def _keep_results(trial: optuna.Trial, results: RunResults) -> None:
    """Copy the run's headline numbers into the trial, for reports that cannot see its folder."""
    trial.set_user_attr("status", results.status)
    if results.resumed_from_epoch is not None:
        trial.set_user_attr(RESUMED_FROM_EPOCH, results.resumed_from_epoch)
    for key in HEADLINE:
        if getattr(results, key) is not None:
            trial.set_user_attr(key, getattr(results, key))


def with_resume(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``resume=true``: the run goes on from its folder's last checkpoint."""
    resumed = cfg.copy()
    with open_dict(resumed):
        resumed.resume = True
    return resumed


def retried_trial(trial: optuna.Trial) -> int | None:
    """The number of the trial this one retries (its worker died, or it was interrupted), else None:
    Optuna's retry callbacks link them (``retried_trial_number``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(_frozen(trial))


def _frozen(trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    """The stored state of a running trial (its user attributes, reports and parameters so far)."""
    return next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)


def _record_interruption(trial: optuna.Trial, stop: BaseException) -> None:
    """Queue the interrupted trial to run again when the sweep resumes, and say why it stopped.

    A storage error here is only logged: it must not turn a clean stop into a crash
    (a trial left RUNNING is failed and retried by the heartbeat instead).
    """
    cause = stop.__context__ if isinstance(stop, SystemExit) and stop.__context__ is not None else stop
    try:
        queue_retry(trial.study, _frozen(trial))  # before the attributes below, which the retry must not inherit
        trial.set_user_attr("status", INTERRUPTED)
        trial.set_user_attr("error", f"interrupted ({cause})" if str(cause) else "interrupted")
    except Exception as error:  # noqa: BLE001
        log.warning("trial %d: could not record its interruption: %s: %s", trial.number, type(error).__name__, error)

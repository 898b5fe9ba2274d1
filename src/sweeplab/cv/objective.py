"""An Optuna objective that cross-validates each trial and can be pruned between folds.

After every fold the trial reports to Optuna and asks whether to stop:

* with :class:`optuna.pruners.WilcoxonPruner` it reports the fold's own score
  at step = fold index: that pruner pairs the trial's fold scores with the best
  trial's scores on the same folds (the folds are the same in every trial);
* with any other pruner (median, percentile, ...) it reports the running mean of
  the folds so far, the current estimate of the objective, which those pruners
  compare across trials at the same step.

A pruned trial keeps its report (status "stopped") in its folder.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from omegaconf import DictConfig

from sweeplab.cv.crossval import cross_validate, fold_metric
from sweeplab.runs.provenance import Parent
from sweeplab.runs.results import COMPLETED, PRUNED
from sweeplab.stats import mean


def _reports_fold_scores(trial: optuna.Trial) -> bool:
    """Whether the study's pruner wants each fold's own score rather than a running value."""
    study = getattr(trial, "study", None)
    return isinstance(getattr(study, "pruner", None), optuna.pruners.WilcoxonPruner)


def cv_objective(
    trial: optuna.Trial, cfg: DictConfig, trial_dir: str | Path, metric: str = "val_acc", parent: Parent | None = None
) -> float:
    """Cross-validate ``cfg`` in ``trial_dir``; return the mean fold ``metric``.

    Raises :class:`optuna.TrialPruned` when the study's pruner stops the trial
    between folds (``cv.folds`` was checked when the sweep was planned).
    A fold that diverges returns NaN, which Optuna records as a failed trial
    without ending the study.
    """
    metric = fold_metric(metric, key="sweep.metric")
    scores: list[float] = []
    per_fold = _reports_fold_scores(trial)

    def report_and_maybe_prune(fold_index: int, score: float) -> None:
        scores.append(score)
        trial.report(score if per_fold else mean(scores), step=fold_index)
        if trial.should_prune():
            trial.set_user_attr("status", PRUNED)
            trial.set_user_attr("cv_folds_completed", len(scores))
            raise optuna.TrialPruned(
                f"pruned after {len(scores)} of {cfg.cv.folds * cfg.cv.repeats} folds "
                f"({metric} so far {mean(scores):.4f})"
            )

    report = cross_validate(cfg, trial_dir, on_fold_end=report_and_maybe_prune, metric=metric, parent=parent)
    _keep_headline(trial, report, metric)
    if report["status"] != COMPLETED:  # a fold diverged: Optuna marks the trial failed, the sweep goes on
        trial.set_user_attr("error", report["error"])
        return float("nan")
    return report["summary"][metric]["mean"]


def _keep_headline(trial: optuna.Trial, report: dict, metric: str) -> None:
    """The CV run's headline numbers as user attributes, for sweep reports that cannot see its folder."""
    summary = report["summary"].get(metric, {})
    trial.set_user_attr("status", report["status"])
    trial.set_user_attr("cv_folds_completed", report["folds_completed"])
    for stat in ("mean", "std", "ci_low", "ci_high"):
        if summary.get(stat) is not None:
            trial.set_user_attr(f"cv_{metric}_{stat}", summary[stat])

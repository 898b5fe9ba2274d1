"""Is one cross-validated model better than another? The corrected resampled t-test.

Two CV runs made with the same folds give paired scores: fold j of run A and
fold j of run B trained and validated on the same images. A plain paired t-test
on the differences is far too eager to call a difference significant, because
the folds share most of their training data and so their scores are correlated.
Nadeau & Bengio (2003) correct the variance of the mean difference::

    d_j = a_j - b_j,   j = 1..J (all folds of all repeats)
    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))      var with ddof=1
    p = 2 * (1 - T_{J-1}(|t|)),   interval = mean(d) ± t_{J-1, 0.975} * sqrt(...)

with n_test and n_train the (mean) validation and training sizes of a fold.
Bouckaert & Frank (2004) recommend it for (repeated) k-fold cross-validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeplab.errors import ConfigError, UserInputError
from sweeplab.files import read_json
from sweeplab.metrics import VAL_ACC, VAL_LOSS
from sweeplab.runs.folder import CV_FOLDS_JSON, CV_REPORT_JSON
from sweeplab.stats import CONFIDENCE, corrected_paired_test, mean

PAIRED_METRICS = {m.name: m for m in (VAL_ACC, VAL_LOSS)}  # what each fold of a CV run scored


@dataclass(frozen=True)
class PairedTest:
    """The corrected resampled t-test of the per-fold differences ``a - b``."""

    differences: tuple[float, ...]
    mean: float
    variance: float  # sample variance of the differences (ddof=1)
    correction: float  # 1/J + n_test/n_train
    standard_error: float  # sqrt(correction * variance)
    t: float
    dof: int
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.confidence


def corrected_resampled_ttest(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    n_train: float,
    n_test: float,
    confidence: float = CONFIDENCE,
) -> PairedTest:
    """Nadeau & Bengio's test of ``mean(a - b) == 0`` over J >= 2 paired fold scores."""
    if len(scores_a) != len(scores_b) or len(scores_a) < 2:
        raise UserInputError(
            f"the paired test needs two equally long lists of at least 2 fold scores, "
            f"got {len(scores_a)} and {len(scores_b)}"
        )
    differences = tuple(float(a) - float(b) for a, b in zip(scores_a, scores_b, strict=True))
    test = corrected_paired_test(differences, n_train, n_test, confidence)
    return PairedTest(
        differences,
        test.mean,
        test.variance,
        test.correction,
        test.standard_error,
        test.t,
        test.dof,
        test.p_value,
        test.interval.low,
        test.interval.high,
        confidence,
    )


# --- two CV run folders ------------------------------------------------------------------
def _cv_run_dir(path: Path) -> Path:
    path = Path(path)
    return path.parent if path.name == CV_REPORT_JSON else path


def load_cv_run(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report and the stored folds of a CV run folder (or of its cv_report.json)."""
    run_dir = _cv_run_dir(Path(path))
    report_path, folds_path = run_dir / CV_REPORT_JSON, run_dir / CV_FOLDS_JSON
    if not report_path.is_file() or not folds_path.is_file():
        raise UserInputError(
            f"{run_dir} is not a cross-validation run: it has no {CV_REPORT_JSON} and {CV_FOLDS_JSON} "
            f"(make one with `python train.py cv.folds=5`)"
        )
    return _read(report_path), _read(folds_path)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserInputError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path} is not a cross-validation record")
    return data


def _fold_identity(folds: dict[str, Any]) -> list[tuple]:
    return [(f["index"], f["repeat"], f["fold"], tuple(f["val_indices"])) for f in folds["folds"]]


def check_same_folds(dir_a: Path, folds_a: dict, report_a: dict, dir_b: Path, folds_b: dict, report_b: dict) -> None:
    """Refuse to pair runs whose folds are not the very same images."""
    if report_a["dataset"] != report_b["dataset"]:
        raise UserInputError(
            f"{dir_a} and {dir_b} cross-validated different datasets "
            f"({report_a['dataset']} and {report_b['dataset']}): their folds cannot be paired"
        )
    if folds_a["pool_size"] != folds_b["pool_size"] or _fold_identity(folds_a) != _fold_identity(folds_b):
        raise UserInputError(
            f"{dir_a} and {dir_b} were not made with the same folds "
            f"({report_a['folds']} folds x {report_a['repeats']}, split seeds {report_a['split_seeds']} vs "
            f"{report_b['folds']} folds x {report_b['repeats']}, split seeds {report_b['split_seeds']}); "
            f"rerun one with the other's cv.folds, cv.repeats and cv.split_seed"
        )


def _paired_scores(report_a: dict, report_b: dict, metric: str) -> list[tuple[dict, dict]]:
    """Fold records completed in both runs, by fold index."""
    b_by_index = {r["index"]: r for r in report_b["fold_results"] if r["status"] == "completed"}
    return [
        (a, b_by_index[a["index"]])
        for a in report_a["fold_results"]
        if a["status"] == "completed" and a["index"] in b_by_index and a[metric] is not None
    ]


def compare_cv_runs(
    dir_a: str | Path, dir_b: str | Path, metric: str = "val_acc", confidence: float = CONFIDENCE
) -> tuple[PairedTest, list[tuple[dict, dict]], dict, dict]:
    """The paired test of two CV runs, the fold records it paired, and both reports."""
    if metric not in PAIRED_METRICS:
        raise ConfigError("metric", metric, f"must be one of {', '.join(PAIRED_METRICS)}")
    dir_a, dir_b = _cv_run_dir(Path(dir_a)), _cv_run_dir(Path(dir_b))
    report_a, folds_a = load_cv_run(dir_a)
    report_b, folds_b = load_cv_run(dir_b)
    check_same_folds(dir_a, folds_a, report_a, dir_b, folds_b, report_b)
    pairs = _paired_scores(report_a, report_b, metric)
    if len(pairs) < 2:
        raise UserInputError(
            f"{dir_a} and {dir_b} have {len(pairs)} fold(s) completed in both; the paired test needs 2"
        )
    paired_indices = {a["index"] for a, _ in pairs}
    stored = [f for f in folds_a["folds"] if f["index"] in paired_indices]
    n_train = mean([f["train_size"] for f in stored])
    n_test = mean([f["val_size"] for f in stored])
    test = corrected_resampled_ttest(
        [a[metric] for a, _ in pairs], [b[metric] for _, b in pairs], n_train, n_test, confidence
    )
    return test, pairs, report_a, report_b


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _verdict(test: PairedTest, metric: str) -> str:
    level = f"{round(100 * (1 - test.confidence))}%"
    interval = f"{round(100 * test.confidence)}% interval [{test.ci_low:+.4f}, {test.ci_high:+.4f}]"
    if not test.significant:
        return (
            f"NOT significant at {level} (p = {test.p_value:.4f}): the mean difference {test.mean:+.4f} "
            f"could well be chance; the {interval} includes 0."
        )
    higher_is_better = PAIRED_METRICS[metric].higher_is_better
    better = "A" if (test.mean > 0) == higher_is_better else "B"
    direction = "higher" if higher_is_better else "lower"
    return (
        f"SIGNIFICANT at {level} (p = {test.p_value:.4f}): {better} is better, its {metric} is {direction} "
        f"by {abs(test.mean):.4f} on average ({interval})."
    )


def format_paired_comparison(dir_a: Path, dir_b: Path, metric: str = "val_acc", confidence: float = CONFIDENCE) -> str:
    """The paired comparison of two CV runs made with the same folds, as text for a terminal."""
    test, pairs, report_a, report_b = compare_cv_runs(dir_a, dir_b, metric, confidence)
    lines = [
        f"Paired comparison of {metric} over {len(pairs)} folds "
        f"({report_a['folds']} folds x {_plural(report_a['repeats'], 'repeat')}, split seeds {report_a['split_seeds']}; "
        "same folds)",
        f"  A: {report_a['model']}  {_cv_run_dir(Path(dir_a))}",
        f"  B: {report_b['model']}  {_cv_run_dir(Path(dir_b))}",
        "",
        f"  {'fold':>4}  {'repeat':>6}  {'A':>8}  {'B':>8}  {'A - B':>8}",
    ]
    for (a, b), difference in zip(pairs, test.differences, strict=True):
        lines.append(f"  {a['index']:>4}  {a['repeat']:>6}  {a[metric]:>8.4f}  {b[metric]:>8.4f}  {difference:>+8.4f}")
    mean_a = mean([a[metric] for a, _ in pairs])
    mean_b = mean([b[metric] for _, b in pairs])
    lines += [
        f"  {'mean':>4}  {'':>6}  {mean_a:>8.4f}  {mean_b:>8.4f}  {test.mean:>+8.4f}",
        "",
        "Corrected resampled t-test (Nadeau & Bengio 2003), for folds that share training data:",
        f"  variance of the differences (ddof=1)  {test.variance:.6g}",
        f"  correction 1/J + n_test/n_train       {test.correction:.4f}  (J={len(pairs)}, "
        f"n_test/n_train={test.correction - 1 / len(pairs):.4f})",
        f"  standard error                        {test.standard_error:.6g}",
        f"  t = {test.t:.4f} with {test.dof} degrees of freedom, p = {test.p_value:.4f} (two-sided)",
        f"  {round(100 * test.confidence)}% interval of the mean difference: [{test.ci_low:+.4f}, {test.ci_high:+.4f}]",
        "",
        _verdict(test, metric),
    ]
    return "\n".join(lines) + "\n"

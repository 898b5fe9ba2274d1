"""k-fold cross-validation: folds, the report's statistics, refit, the paired test, sweeps with pruning."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import numpy as np
import optuna
import pytest
from scipy import stats as scipy_stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAKE_FAST, compose_config, run_cli
from sweeplab.cv.crossval import cross_validate
from sweeplab.cv.folds import check_folds_fit_classes, stratified_folds
from sweeplab.cv.objective import cv_objective
from sweeplab.cv.paired import corrected_resampled_ttest, format_paired_comparison
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.files import write_json_atomic

POOL = 256  # FAKE_FAST's data.num_samples
# noise makes fake data hard enough that folds score differently (not all 1.0)
CV_FAST = [o for o in FAKE_FAST if o != "logger=csv"] + [
    "logger=tensorboard",
    "model=mlp",
    "data.noise=3",
    "cv.folds=3",
]


def _cv(tmp_path_factory, name: str, *extra: str) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp(name)
    return run_dir, cross_validate(compose_config(CV_FAST + list(extra)), run_dir)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    return _cv(tmp_path_factory, "cv", "cv.refit=true")


@pytest.fixture(scope="module")
def cv_run_again(tmp_path_factory):
    return _cv(tmp_path_factory, "cv_again", "cv.refit=true")


@pytest.fixture(scope="module")
def cv_run_other_seed(tmp_path_factory):
    return _cv(tmp_path_factory, "cv_seed1", "cv.split_seed=1", "trainer.max_epochs=1")


def _csv_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "cv_folds.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _stored_val_indices(run_dir: Path) -> list[list[int]]:
    return [fold["val_indices"] for fold in json.loads((run_dir / "cv_folds.json").read_text())["folds"]]


# --- folds ----------------------------------------------------------------------------
def test_folds_partition_the_pool_and_are_stratified(cv_run):
    run_dir, report = cv_run
    assert report["status"] == "completed" and report["folds_completed"] == 3
    stored = _stored_val_indices(run_dir)
    assert len(stored) == 3
    for i, first in enumerate(stored):
        for second in stored[i + 1 :]:
            assert not set(first) & set(second), "validation folds overlap"
    assert sorted(index for fold in stored for index in fold) == list(range(POOL))
    rows = _csv_rows(run_dir)
    assert sum(int(row["val_size"]) for row in rows) == POOL == report["pool_size"]
    assert [int(row["val_size"]) for row in rows] == [len(fold) for fold in stored]
    assert all(int(row["train_size"]) + int(row["val_size"]) == POOL for row in rows)
    # stratified: every class's count differs by at most one between folds
    class_counts = np.array([[sum(row) for row in record["val_confusion"]] for record in report["fold_results"]])
    assert (class_counts.max(axis=0) - class_counts.min(axis=0)).max() <= 1


def test_each_fold_is_a_run_of_its_own_that_never_sees_the_test_set(cv_run):
    run_dir, report = cv_run
    for i, val_indices in enumerate(_stored_val_indices(run_dir)):
        fold = json.loads((run_dir / f"fold_{i}" / "results.json").read_text())
        assert fold["status"] == "completed" and fold["val_size"] == len(val_indices)
        assert fold["test_acc"] is None and fold["test_confusion"] is None
        assert report["fold_results"][i]["val_acc"] == fold["val_acc_at_best_epoch"]
        assert list((run_dir / f"fold_{i}").glob("events.out.tfevents.*")), "each fold is a TensorBoard run"


def test_same_config_gives_identical_fold_scores_and_another_split_seed_other_folds(
    cv_run, cv_run_again, cv_run_other_seed
):
    (dir_a, a), (dir_b, b), (dir_c, _) = cv_run, cv_run_again, cv_run_other_seed
    assert [r["val_acc"] for r in a["fold_results"]] == [r["val_acc"] for r in b["fold_results"]]
    assert [r["val_loss"] for r in a["fold_results"]] == [r["val_loss"] for r in b["fold_results"]]
    assert _stored_val_indices(dir_a) == _stored_val_indices(dir_b)
    assert _stored_val_indices(dir_a) != _stored_val_indices(dir_c)
    assert sorted(i for fold in _stored_val_indices(dir_c) for i in fold) == list(range(POOL))


def test_repeats_use_consecutive_split_seeds():
    labels = np.arange(60) % 3
    folds = stratified_folds(labels, folds=4, repeats=2, split_seed=7)
    assert [(f.index, f.repeat, f.fold, f.split_seed) for f in folds] == [
        (i, i // 4, i % 4, 7 + i // 4) for i in range(8)
    ]
    for repeat in (0, 1):
        val = np.concatenate([f.val_indices for f in folds if f.repeat == repeat])
        assert sorted(val.tolist()) == list(range(60))
    assert [f.val_indices.tolist() for f in folds[:4]] != [f.val_indices.tolist() for f in folds[4:]]
    again = stratified_folds(labels, folds=4, repeats=1, split_seed=8)
    assert [f.val_indices.tolist() for f in again] == [f.val_indices.tolist() for f in folds[4:]]


def test_repeated_cv_trains_every_fold_of_every_repeat(tmp_path):
    cfg = compose_config(
        CV_FAST + ["logger=csv", "cv.folds=2", "cv.repeats=2", "cv.split_seed=5", "trainer.max_epochs=1"]
    )
    report = cross_validate(cfg, tmp_path)
    rows = _csv_rows(tmp_path)
    assert report["status"] == "completed" and report["split_seeds"] == [5, 6]
    assert [(int(r["repeat"]), int(r["fold"]), int(r["split_seed"])) for r in rows] == [
        (0, 0, 5),
        (0, 1, 5),
        (1, 0, 6),
        (1, 1, 6),
    ]
    assert sorted(p.name for p in tmp_path.glob("fold_*")) == ["fold_0", "fold_1", "fold_2", "fold_3"]
    for repeat in ("0", "1"):
        assert sum(int(r["val_size"]) for r in rows if r["repeat"] == repeat) == POOL
    assert report["summary"]["val_acc"]["n"] == 4
    assert report["summary"]["val_acc"]["corrected_sem"] == pytest.approx(
        report["summary"]["val_acc"]["std"] * math.sqrt(1 / 4 + 1)
    )  # n_test / n_train = 128 / 128


# --- the report -------------------------------------------------------------------------
def test_summary_agrees_with_a_recomputation_from_the_csv(cv_run):
    run_dir, report = cv_run
    rows = _csv_rows(run_dir)
    for metric in ("val_acc", "val_loss"):
        values = [float(row[metric]) for row in rows]
        n = len(values)
        mean, std = statistics.mean(values), statistics.stdev(values)
        sem = std / math.sqrt(n)
        low, high = scipy_stats.t.interval(0.95, n - 1, loc=mean, scale=sem)
        n_train = statistics.mean(int(row["train_size"]) for row in rows)
        n_test = statistics.mean(int(row["val_size"]) for row in rows)
        corrected = std * math.sqrt(1 / n + n_test / n_train)
        summary = report["summary"][metric]
        assert summary["n"] == n == 3
        assert summary["mean"] == pytest.approx(mean) and summary["std"] == pytest.approx(std)
        assert summary["sem"] == pytest.approx(sem)
        floor, ceiling = (
            (0.0, 1.0) if metric == "val_acc" else (-math.inf, math.inf)
        )  # an accuracy's interval is clipped
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((max(low, floor), min(high, ceiling)))
        assert summary["ci_clipped"] == (low < floor or high > ceiling)
        corrected_high = mean + scipy_stats.t.ppf(0.975, n - 1) * corrected
        assert summary["corrected_ci_high"] == pytest.approx(min(corrected_high, ceiling))
    assert std > 0, "fold scores should differ on noisy data, or the interval test proves nothing"
    on_disk = json.loads((run_dir / "cv_report.json").read_text())
    assert on_disk["summary"] == json.loads(json.dumps(report["summary"]))
    markdown = (run_dir / "cv_report.md").read_text()
    assert f"{report['summary']['val_acc']['mean']:.4f}" in markdown
    assert f"[{report['summary']['val_acc']['ci_low']:.4f}, {report['summary']['val_acc']['ci_high']:.4f}]" in markdown
    acc = report["summary"]["val_acc"]
    assert ("(clipped to [0, 1])" in markdown) == (acc["ci_clipped"] or acc["corrected_ci_clipped"])
    assert (run_dir / "cv_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_class_accuracy_comes_from_the_fold_confusions(cv_run):
    run_dir, report = cv_run
    confusions = [
        np.array(json.loads((run_dir / f"fold_{i}" / "results.json").read_text())["val_confusion"]) for i in range(3)
    ]
    recalls = np.stack([c.diagonal() / c.sum(axis=1) for c in confusions])  # (folds, classes)
    assert [row["class"] for row in report["per_class"]] == [f"class_{i}" for i in range(10)]
    assert [row["mean"] for row in report["per_class"]] == pytest.approx(recalls.mean(axis=0).tolist())
    assert [row["std"] for row in report["per_class"]] == pytest.approx(recalls.std(axis=0, ddof=1).tolist())


def test_refit_trains_on_the_whole_pool_for_the_mean_best_epoch_and_tests_once(cv_run):
    run_dir, report = cv_run
    refit = report["refit"]
    mean_best_epoch = statistics.mean(r["best_epoch"] for r in report["fold_results"])
    assert refit["status"] == "completed"
    assert refit["epochs"] == refit["epochs_run"] == max(1, round(mean_best_epoch))
    refit_results = json.loads((run_dir / "refit" / "results.json").read_text())
    assert refit_results["train_size"] == POOL and refit["train_size"] == POOL
    assert refit_results["test_size"] == 64 and refit["test_acc"] == refit_results["test_acc"] == report["test_acc"]
    assert "Refit on the whole pool" in (run_dir / "cv_report.md").read_text()


def test_the_cv_run_logs_fold_scores_to_tensorboard(cv_run):
    run_dir, report = cv_run
    events = EventAccumulator(str(run_dir))
    events.Reload()
    logged = events.Scalars("cv/val_acc")
    assert [event.step for event in logged] == [r["index"] for r in report["fold_results"]]
    assert [event.value for event in logged] == pytest.approx([r["val_acc"] for r in report["fold_results"]])


# --- the paired test ----------------------------------------------------------------------
A_SCORES = [0.91, 0.93, 0.90, 0.95, 0.92]
B_SCORES = [0.89, 0.92, 0.91, 0.92, 0.90]


def _hand_corrected_ttest(a, b, n_train, n_test):
    d = [x - y for x, y in zip(a, b, strict=True)]
    J = len(d)
    mean = sum(d) / J
    variance = sum((x - mean) ** 2 for x in d) / (J - 1)
    se = math.sqrt((1 / J + n_test / n_train) * variance)
    t = mean / se
    p = 2 * scipy_stats.t.sf(abs(t), J - 1)
    half = scipy_stats.t.ppf(0.975, J - 1) * se
    return mean, variance, t, p, mean - half, mean + half


def test_corrected_resampled_ttest_matches_a_hand_computation():
    mean, variance, t, p, low, high = _hand_corrected_ttest(A_SCORES, B_SCORES, 800, 200)
    test = corrected_resampled_ttest(A_SCORES, B_SCORES, n_train=800, n_test=200)
    assert test.mean == pytest.approx(mean) and test.variance == pytest.approx(variance)
    assert test.correction == pytest.approx(1 / 5 + 200 / 800)
    assert test.t == pytest.approx(t) and test.dof == 4
    assert test.p_value == pytest.approx(p) and (test.ci_low, test.ci_high) == pytest.approx((low, high))
    # the correction makes the test more cautious than the plain paired t-test
    assert test.p_value > scipy_stats.ttest_rel(A_SCORES, B_SCORES).pvalue


def _fake_cv_run(run_dir: Path, scores, seed: int = 0, model: str = "Net") -> Path:
    """A CV run folder with made-up fold scores (5 folds of a 1,000-image pool)."""
    folds = [
        {
            "index": i,
            "repeat": 0,
            "fold": i,
            "split_seed": seed,
            "train_size": 800,
            "val_size": 200,
            "val_indices": list(range((i + seed) % 5 * 200, ((i + seed) % 5 + 1) * 200)),
        }
        for i in range(5)
    ]
    write_json_atomic(run_dir / "cv_folds.json", {"pool_size": 1000, "folds": folds})
    write_json_atomic(
        run_dir / "cv_report.json",
        {
            "dataset": "fake",
            "model": model,
            "folds": 5,
            "repeats": 1,
            "split_seeds": [seed],
            "fold_results": [
                {"index": i, "repeat": 0, "status": "completed", "val_acc": s, "val_loss": 1 - s}
                for i, s in enumerate(scores)
            ],
        },
    )
    return run_dir


def test_format_paired_comparison_prints_the_hand_computed_test(tmp_path):
    dir_a = _fake_cv_run(tmp_path / "a", A_SCORES, model="Wide")
    dir_b = _fake_cv_run(tmp_path / "b", B_SCORES, model="Narrow")
    mean, _, t, p, low, high = _hand_corrected_ttest(A_SCORES, B_SCORES, 800, 200)
    text = format_paired_comparison(dir_a, dir_b)
    assert f"t = {t:.4f} with 4 degrees of freedom, p = {p:.4f}" in text
    assert f"[{low:+.4f}, {high:+.4f}]" in text and f"{mean:+.4f}" in text
    assert ("NOT significant at 5%" in text) == (p >= 0.05)

    big_gap = [s + 0.05 + 0.001 * i for i, s in enumerate(B_SCORES)]
    significant = format_paired_comparison(_fake_cv_run(tmp_path / "c", big_gap), dir_b)
    assert "SIGNIFICANT at 5%" in significant and "A is better" in significant
    by_loss = format_paired_comparison(_fake_cv_run(tmp_path / "d", big_gap), dir_b, metric="val_loss")
    assert "A is better" in by_loss  # lower loss wins


def test_paired_comparison_of_identical_runs_finds_nothing(cv_run, cv_run_again):
    text = format_paired_comparison(cv_run[0], cv_run_again[0])
    assert "p = 1.0000" in text and "NOT significant" in text


def test_paired_comparison_refuses_runs_with_different_folds(tmp_path, cv_run, cv_run_other_seed):
    with pytest.raises(UserInputError, match="not made with the same folds"):
        format_paired_comparison(cv_run[0], cv_run_other_seed[0])
    with pytest.raises(UserInputError, match="not made with the same folds"):
        format_paired_comparison(_fake_cv_run(tmp_path / "a", A_SCORES), _fake_cv_run(tmp_path / "b", B_SCORES, seed=1))
    with pytest.raises(UserInputError, match="is not a cross-validation run"):
        format_paired_comparison(cv_run[0], tmp_path)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, key",
    [
        ("cv.folds=1", "cv.folds"),
        ("cv.folds=-3", "cv.folds"),
        ("cv.repeats=0", "cv.repeats"),
        ("cv.split_seed=-1", "cv.split_seed"),
    ],
)
def test_bad_cv_settings_are_refused_before_any_work(tmp_path, override, key):
    cfg = compose_config(FAKE_FAST + ["cv.folds=3", override])
    with pytest.raises(ConfigError, match=f"^{key}=") as refused:
        cross_validate(cfg, tmp_path)
    assert refused.value.key == key
    assert not list(tmp_path.iterdir()), "nothing may be written for refused input"


def test_more_folds_than_the_smallest_class_has_samples_is_refused(tmp_path):
    # 45 samples of 10 classes: five classes have 5 samples, five have 4
    cfg = compose_config(FAKE_FAST + ["data.num_samples=45", "cv.folds=5"])
    with pytest.raises(
        ConfigError, match=r"cv.folds=5 is invalid: must be at most 4, the smallest class count"
    ) as refused:
        cross_validate(cfg, tmp_path)
    assert refused.value.key == "cv.folds"
    check_folds_fit_classes(4, np.arange(45) % 10)  # 4 folds fit


# --- sweeps: a CV objective pruned between folds ------------------------------------------
def _objective(tmp_path: Path, bad_trials: set[int]):
    def objective(trial: optuna.Trial) -> float:
        lr = ["optimizer=sgd", "optimizer.lr=1e-6"] if trial.number in bad_trials else ["optimizer.lr=0.003"]
        cfg = compose_config(CV_FAST + ["logger=csv", *lr])
        return cv_objective(trial, cfg, tmp_path / f"trial_{trial.number}", "val_acc")

    return objective


def test_cv_objective_prunes_a_bad_trial_after_its_first_fold(tmp_path):
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    )
    study.optimize(_objective(tmp_path, bad_trials={2}), n_trials=4)
    states = [trial.state for trial in study.trials]
    assert len(states) == 4 and states.count(optuna.trial.TrialState.PRUNED) >= 1
    assert states[2] == optuna.trial.TrialState.PRUNED
    pruned = study.trials[2]
    assert list(pruned.intermediate_values) == [0], "pruned after its first fold of 3"
    stopped = json.loads((tmp_path / "trial_2" / "cv_report.json").read_text())
    assert stopped["status"] == "stopped" and stopped["folds_completed"] == 1 and "TrialPruned" in stopped["error"]
    assert not (tmp_path / "trial_2" / "fold_1").exists()
    assert pruned.user_attrs["status"] == "pruned" and pruned.user_attrs["cv_folds_completed"] == 1
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            report = json.loads((tmp_path / f"trial_{trial.number}" / "cv_report.json").read_text())
            scores = [r["val_acc"] for r in report["fold_results"]]
            assert trial.value == pytest.approx(statistics.mean(scores)) == trial.user_attrs["cv_val_acc_mean"]
            running_means = [statistics.mean(scores[: i + 1]) for i in range(3)]
            assert list(trial.intermediate_values.values()) == pytest.approx(running_means)


def test_with_the_wilcoxon_pruner_each_fold_score_is_reported(tmp_path):
    # two folds worse than the best trial give a one-sided Wilcoxon p of 0.25
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.WilcoxonPruner(p_threshold=0.3, n_startup_steps=2)
    )
    study.optimize(_objective(tmp_path, bad_trials={1}), n_trials=2)
    good, bad = study.trials
    report = json.loads((tmp_path / "trial_0" / "cv_report.json").read_text())
    assert list(good.intermediate_values.values()) == pytest.approx([r["val_acc"] for r in report["fold_results"]])
    assert bad.state == optuna.trial.TrialState.PRUNED and len(bad.intermediate_values) == 2  # of 3 folds


# --- the acceptance command on real MNIST -------------------------------------------------
@pytest.mark.slow
def test_train_py_cross_validates_lenet_on_real_mnist(tmp_path, mnist_dir):
    result = run_cli(
        "train.py",
        "cv.folds=3",
        "model=lenet",
        "trainer.max_epochs=2",
        f"data.data_dir={mnist_dir}",
        "progress_bar=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = next(tmp_path.rglob("cv_report.json")).parent
    report = json.loads((run_dir / "cv_report.json").read_text())
    assert report["status"] == "completed" and report["pool_size"] == 8000
    assert sum(r["val_size"] for r in report["fold_results"]) == 8000
    stored = _stored_val_indices(run_dir)
    assert sorted(i for fold in stored for i in fold) == list(range(8000))
    assert report["summary"]["val_acc"]["mean"] > 0.9
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "cv_report.md").exists()
